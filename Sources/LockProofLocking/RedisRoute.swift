import Foundation
import LockProofRedis

/// Where the Redis primary is now, as Sentinel would tell the clients: a failover switches it,
/// and every lock connection that sees the change reconnects to the new primary.
public final class RedisRoute: @unchecked Sendable {
    private let lock = NSLock()
    private var current: RedisEndpoint
    private var changes = 0

    public init(_ endpoint: RedisEndpoint) { current = endpoint }

    /// The primary and how many switches led to it.
    public var primary: (endpoint: RedisEndpoint, generation: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (current, changes)
    }

    public func switchTo(_ endpoint: RedisEndpoint) {
        lock.lock()
        current = endpoint
        changes += 1
        lock.unlock()
    }
}

/// Who holds which Redis lock right now, across the process's clients: shows two holders of one
/// lock at once (a lease that ran out under a stalled holder, a failover that forgot the lock).
public final class LockHolderRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var holders: [String: Int] = [:]
    private var overlapCount = 0
    private var mostAtOnce = 0
    private var firstOverlap: String?

    public init() {}

    func acquired(_ key: String) {
        lock.lock()
        holders[key, default: 0] += 1
        let count = holders[key]!
        if count > 1 {
            overlapCount += 1
            if firstOverlap == nil { firstOverlap = key }
        }
        mostAtOnce = max(mostAtOnce, count)
        lock.unlock()
    }

    func released(_ key: String) {
        lock.lock()
        holders[key, default: 1] -= 1
        if holders[key]! <= 0 { holders[key] = nil }
        lock.unlock()
    }

    /// Acquisitions that found the lock already held by another client of this process.
    public var overlaps: Int {
        lock.lock()
        defer { lock.unlock() }
        return overlapCount
    }

    /// The most holders one lock had at once.
    public var maxHolders: Int {
        lock.lock()
        defer { lock.unlock() }
        return mostAtOnce
    }

    public var firstOverlappingKey: String? {
        lock.lock()
        defer { lock.unlock() }
        return firstOverlap
    }

    public func reset() {
        lock.lock()
        holders = [:]
        overlapCount = 0
        mostAtOnce = 0
        firstOverlap = nil
        lock.unlock()
    }
}
