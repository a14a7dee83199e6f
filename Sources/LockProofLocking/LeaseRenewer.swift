import Foundation
import LockProofRedis
import LockProofSync

/// The watchdog: one thread per process with its own connection renews every registered lease at a
/// third of its length, for as long as its holder has not released it.
public final class LeaseRenewer: @unchecked Sendable {
    private struct Lease {
        let handle: LockHandle
        var renewedAt: Double
        /// When the last renewal Redis confirmed was sent: the lease runs a lease from no earlier.
        var confirmedSentAt: Double?
    }
    private var connection: RedisConnection
    private let route: RedisRoute?
    private var routeGeneration = 0
    private let condition = WaitCondition()
    private var leases: [String: Lease] = [:]
    private var stopping = false
    private let stopped = DispatchSemaphore(value: 0)
    /// Renewals that found the lock gone (its lease had already expired).
    public private(set) var lostCount = 0

    public init(endpoint: RedisEndpoint, route: RedisRoute? = nil) throws {
        connection = try RedisConnection(endpoint: endpoint)
        self.route = route
        routeGeneration = route?.primary.generation ?? 0
        let thread = Thread { [self] in run() }
        thread.name = "lockproof-lease-renewer"
        thread.start()
    }

    func register(_ handle: LockHandle) {
        condition.lock()
        leases[handle.token] = Lease(handle: handle, renewedAt: monotonicSeconds())
        condition.broadcast()
        condition.unlock()
    }

    /// Stops renewing `handle`'s lease: its holder stalled (a pause stand-in), so its lease runs
    /// out as a real pause would let it.
    public func suspend(_ handle: LockHandle) { unregister(handle) }

    /// Returns when the last renewal Redis confirmed was sent (monotonic seconds), if any.
    @discardableResult
    func unregister(_ handle: LockHandle) -> Double? {
        condition.lock()
        let confirmed = leases.removeValue(forKey: handle.token)?.confirmedSentAt
        condition.unlock()
        return confirmed
    }

    private func run() {
        defer { stopped.signal() }
        while true {
            condition.lock()
            if stopping {
                condition.unlock()
                return
            }
            let now = monotonicSeconds()
            let due = leases.values.filter { now - $0.renewedAt >= Double($0.handle.leaseMilliseconds) / 3000 }
            let nextWake =
                leases.values.map { $0.renewedAt + Double($0.handle.leaseMilliseconds) / 3000 }.min() ?? now + 1
            if due.isEmpty {
                _ = condition.wait(until: Date(timeIntervalSinceNow: max(0.001, min(nextWake - now, 1))))
                condition.unlock()
                continue
            }
            condition.unlock()
            if let route, route.primary.generation != routeGeneration {
                let (endpoint, generation) = route.primary
                if let fresh = try? RedisConnection(endpoint: endpoint) {
                    connection = fresh
                    routeGeneration = generation
                }
            }
            for lease in due {
                let sent = monotonicSeconds()
                let reply = try? connection.eval(
                    LockScripts.renew, keys: [lease.handle.key],
                    arguments: [lease.handle.token, String(lease.handle.leaseMilliseconds)])
                condition.lock()
                if reply?.integer == 1 {
                    if leases[lease.handle.token] != nil {
                        leases[lease.handle.token]?.renewedAt = monotonicSeconds()
                        leases[lease.handle.token]?.confirmedSentAt = sent
                    }
                } else if reply != nil {
                    leases[lease.handle.token] = nil
                    lostCount += 1
                }
                condition.unlock()
            }
        }
    }

    public func stop() {
        condition.lock()
        if stopping {
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        condition.unlock()
        stopped.wait()
    }

}
