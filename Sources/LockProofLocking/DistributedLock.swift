import Foundation
import LockProofRedis

/// The wait for a distributed lock ran out.
public struct LockTimeout: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let waitedSeconds: Double
    public var description: String {
        "distributed lock \(key) not acquired within \(Int(waitedSeconds * 1000)) ms"
    }
}

/// A held distributed lock.
public struct LockHandle: Sendable, Equatable {
    public let key: String
    /// Unique to this holding: only its holder may release or renew it.
    public let token: String
    /// Grows with every acquisition of `key`; storage can refuse writes with a stale one.
    public let fencingToken: Int64
    public let leaseMilliseconds: Int
}

/// Lease, wait limit and renewal of a distributed lock.
public struct DistributedLockOptions: Sendable, Equatable {
    public var leaseMilliseconds: Int
    public var waitMilliseconds: Int
    /// Renew the lease while the holder runs (Redisson's watchdog).
    public var renewLease: Bool

    public static let standard = DistributedLockOptions(leaseMilliseconds: 5_000, waitMilliseconds: 10_000, renewLease: true)

    public init(leaseMilliseconds: Int, waitMilliseconds: Int, renewLease: Bool) {
        self.leaseMilliseconds = leaseMilliseconds
        self.waitMilliseconds = waitMilliseconds
        self.renewLease = renewLease
    }
}

enum LockScripts {
    static let releaseChannel = "lockproof:lock-released"

    /// KEYS: lock, fence counter. ARGV: token, lease ms. {1, fencing token} or {0, remaining ttl ms}.
    static let acquire = RedisScript(
        """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
          return {1, redis.call('INCR', KEYS[2])}
        end
        return {0, redis.call('PTTL', KEYS[1])}
        """)

    /// Compare-and-delete: a holder whose lease expired cannot delete the next holder's lock.
    static let release = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], KEYS[1])
          return 1
        end
        return 0
        """)

    /// Compare-and-extend.
    static let renew = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    static func fenceKey(_ key: String) -> String { "lockproof:fence:\(key)" }
}

/// The per-client side of the Redis lock (`SET key token NX PX lease`). Owns no connection of its
/// own: it uses the client's, so it is as thread-bound as that connection.
public final class DistributedLockClient {
    public private(set) var redis: RedisConnection
    public let notifier: LockReleaseNotifier?
    public let renewer: LeaseRenewer?
    /// When set, Redis failures feed it and, while it is open, `withLockOrFallback` skips Redis.
    public let breaker: CircuitBreaker?
    /// When set, a failover's new primary is followed (a new connection on the next call).
    public let route: RedisRoute?
    public let holders: LockHolderRegistry?
    private var routeGeneration = 0

    public init(
        redis: RedisConnection, notifier: LockReleaseNotifier? = nil, renewer: LeaseRenewer? = nil,
        breaker: CircuitBreaker? = nil, route: RedisRoute? = nil, holders: LockHolderRegistry? = nil
    ) {
        self.redis = redis
        self.notifier = notifier
        self.renewer = renewer
        self.breaker = breaker
        self.route = route
        self.holders = holders
        if let route {
            let (endpoint, generation) = route.primary
            // A connection to another server than the current primary (a pooled one opened before
            // a failover) follows the route on first use.
            routeGeneration = endpoint.host == redis.endpoint.host && endpoint.port == redis.endpoint.port ? generation : -1
        }
    }

    private func followRoute() throws {
        guard let route else { return }
        let (endpoint, generation) = route.primary
        guard generation != routeGeneration else { return }
        redis = try RedisConnection(
            endpoint: endpoint, connectTimeout: redis.connectTimeout, commandTimeout: redis.commandTimeout, clientName: redis.clientName)
        routeGeneration = generation
    }

    /// Waits for the lock up to `options.waitMilliseconds`: woken by the release notification, or
    /// when the holder's lease runs out, never by busy polling.
    public func acquire(_ key: String, options: DistributedLockOptions, probe: Probe) throws -> LockHandle {
        try acquire(key, options: options, probe: probe, answered: nil)
    }

    /// `answered` is called once, at Redis' first reply: Redis is up even if the wait goes on.
    func acquire(
        _ key: String, options: DistributedLockOptions, probe: Probe, answered: (() -> Void)?
    ) throws -> LockHandle {
        var answered = answered
        let token = lockToken()
        let started = monotonicSeconds()
        let deadline = started + Double(options.waitMilliseconds) / 1000
        do {
            while true {
                // Each try, not once per call: a waiter outlives a failover.
                try followRoute()
                let generation = notifier?.generation(of: key) ?? 0
                let sent = monotonicSeconds()
                let reply = try redis.eval(
                    LockScripts.acquire, keys: [key, LockScripts.fenceKey(key)],
                    arguments: [token, String(options.leaseMilliseconds)])
                guard let items = reply.array, items.count == 2, let flag = items[0].integer,
                    let value = items[1].integer
                else { throw RedisError(kind: .protocolError, message: "unexpected lock reply \(reply)") }
                answered?()
                answered = nil
                if flag == 1 {
                    let granted = monotonicSeconds()
                    probe.record(.lockWaited(.redis, seconds: granted - started))
                    let handle = LockHandle(
                        key: key, token: token, fencingToken: value, leaseMilliseconds: options.leaseMilliseconds)
                    probe.record(.lockAcquired(handle, requestedAt: sent, at: granted, renewed: options.renewLease && renewer != nil))
                    if options.renewLease { renewer?.register(handle) }
                    holders?.acquired(key)
                    return handle
                }
                let now = monotonicSeconds()
                if now >= deadline {
                    probe.record(.lockAcquireFailed(.redis, .timeout))
                    throw LockTimeout(key: key, waitedSeconds: now - started)
                }
                // The holder's lease bounds the wait: an expired lease sends no notification.
                let leaseLeft = value > 0 ? Double(value) / 1000 : 0.001
                let wakeAt = min(deadline, now + leaseLeft + 0.001)
                if let notifier {
                    notifier.wait(for: key, changingFrom: generation, until: wakeAt)
                } else {
                    sleep(seconds: min(wakeAt - now, 0.01))
                }
            }
        } catch let error as RedisError {
            probe.record(.lockAcquireFailed(.redis, .error))
            throw error
        }
    }

    /// Releases the lock if this holding still owns it. Returns false when the lease had expired
    /// (someone else may hold it now): that is recorded as a lost lock.
    @discardableResult
    public func release(_ handle: LockHandle, probe: Probe) throws -> Bool {
        let renewed = renewer?.unregister(handle)
        holders?.released(handle.key)
        let sent = monotonicSeconds()
        let reply: RedisReply
        do {
            try followRoute()
            reply = try redis.eval(
                LockScripts.release, keys: [handle.key], arguments: [handle.token, LockScripts.releaseChannel])
        } catch {
            probe.record(.lockReleased(handle, requestedAt: sent, released: nil, renewedAt: renewed))
            throw error
        }
        let released = reply.integer == 1
        probe.record(.lockReleased(handle, requestedAt: sent, released: released, renewedAt: renewed))
        if !released { probe.record(.distributedLockLost) }
        return released
    }

    /// Holds the lock around `body`: acquired before it starts, released after it ends, whether it
    /// returned or threw. The transaction must live entirely inside `body`.
    public func withLock<T>(
        _ key: String, options: DistributedLockOptions, probe: Probe, _ body: (LockHandle) throws -> T
    ) throws -> T {
        let handle = try acquire(key, options: options, probe: probe)
        let acquired = monotonicSeconds()
        let value: T
        do {
            value = try body(handle)
        } catch {
            _ = try? release(handle, probe: probe)
            probe.record(.lockHeld(.redis, seconds: monotonicSeconds() - acquired))
            throw error
        }
        // The work has committed: a failed release must not turn it into a failure. The lease
        // expires on its own.
        _ = try? release(handle, probe: probe)
        probe.record(.lockHeld(.redis, seconds: monotonicSeconds() - acquired))
        return value
    }

    /// Like `withLock`, behind the circuit breaker: while it is open, or when Redis fails, `body`
    /// runs without the Redis lock (handle nil) and relies on the database locks alone. A lock wait
    /// that times out is not a Redis failure: it is thrown as before.
    public func withLockOrFallback<T>(
        _ key: String, options: DistributedLockOptions, probe: Probe, _ body: (LockHandle?) throws -> T
    ) throws -> T {
        guard let breaker else { return try withLock(key, options: options, probe: probe) { try body($0) } }
        let (permission, changed) = breaker.permission()
        if let changed { probe.record(.circuitBreaker(changed)) }
        if permission == .bypass {
            probe.record(.redisLockBypassed)
            return try body(nil)
        }
        let handle: LockHandle
        do {
            handle = try acquire(key, options: options, probe: probe) {
                if let changed = breaker.recordSuccess() { probe.record(.circuitBreaker(changed)) }
            }
        } catch is RedisError {
            if let changed = breaker.recordFailure() { probe.record(.circuitBreaker(changed)) }
            probe.record(.redisLockBypassed)
            return try body(nil)
        }
        // Held from acquisition to release, as `withLock` reports it.
        let acquired = monotonicSeconds()
        defer { probe.record(.lockHeld(.redis, seconds: monotonicSeconds() - acquired)) }
        let value: T
        do {
            value = try body(handle)
        } catch {
            releaseReporting(handle, probe: probe)
            throw error
        }
        releaseReporting(handle, probe: probe)
        return value
    }

    private func releaseReporting(_ handle: LockHandle, probe: Probe) {
        do {
            try release(handle, probe: probe)
        } catch is RedisError {
            renewer?.unregister(handle)
            if let changed = breaker?.recordFailure() { probe.record(.circuitBreaker(changed)) }
        } catch {}
    }
}

/// A lock holder's token: 128 random bits in hex. UUID().uuidString formats through snprintf,
/// about 6,000 instructions per lock under callgrind (docs/BENCH.md); this is a few hundred.
func lockToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let high = String(generator.next() as UInt64, radix: 16)
    let low = String(generator.next() as UInt64, radix: 16)
    return String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 16 - low.count) + low
}
