import Foundation
import LockProofRedis
import Synchronization

/// Where the Redis primary is now, as Sentinel would tell the clients: a failover switches it,
/// and every lock connection that sees the change reconnects to the new primary.
public final class RedisRoute: Sendable {
    private let state: Mutex<(current: RedisEndpoint, changes: Int)>

    public init(_ endpoint: RedisEndpoint) { state = Mutex((endpoint, 0)) }

    /// The primary and how many switches led to it.
    public var primary: (endpoint: RedisEndpoint, generation: Int) {
        state.withLock { ($0.current, $0.changes) }
    }

    public func switchTo(_ endpoint: RedisEndpoint) {
        state.withLock {
            $0.current = endpoint
            $0.changes += 1
        }
    }
}

/// Who holds which Redis lock right now, across the process's clients: shows two holders of one
/// lock at once (a lease that ran out under a stalled holder, a failover that forgot the lock).
public final class LockHolderRegistry: Sendable {
    private struct State {
        var holders: [String: Int] = [:]
        var overlapCount = 0
        var mostAtOnce = 0
        var firstOverlap: String?
    }

    private let state = Mutex(State())

    public init() {}

    func acquired(_ key: String) {
        state.withLock { state in
            state.holders[key, default: 0] += 1
            let count = state.holders[key]!
            if count > 1 {
                state.overlapCount += 1
                if state.firstOverlap == nil { state.firstOverlap = key }
            }
            state.mostAtOnce = max(state.mostAtOnce, count)
        }
    }

    func released(_ key: String) {
        state.withLock { state in
            state.holders[key, default: 1] -= 1
            if state.holders[key]! <= 0 { state.holders[key] = nil }
        }
    }

    /// Acquisitions that found the lock already held by another client of this process.
    public var overlaps: Int {
        state.withLock { $0.overlapCount }
    }

    /// The most holders one lock had at once.
    public var maxHolders: Int {
        state.withLock { $0.mostAtOnce }
    }

    public var firstOverlappingKey: String? {
        state.withLock { $0.firstOverlap }
    }

    public func reset() {
        state.withLock { $0 = State() }
    }
}
