import Foundation

/// The one condition variable of LockProof: a lock with wait and signal, for the threads that must
/// block until something changes (a pool's free connection, a barrier, a stop request). Swift 6's
/// `Mutex` is the lock primitive everywhere else; where a thread must sleep until another wakes it,
/// this box is used, never `NSCondition` directly, so the one trap below is guarded once.
///
/// Used as `NSCondition` is: `lock()`, then `wait()`/`wait(until:)` in a loop on the predicate,
/// `signal()`/`broadcast()` by the thread that changed it, `unlock()`.
public final class WaitCondition: @unchecked Sendable {
    /// The longest single wait: `NSCondition.wait(until:)` traps (SIGILL) on a date too far ahead
    /// (an interval of 1e10 s), so a far deadline is waited out in slices of at most this.
    public static let longestWaitSeconds: Double = 60

    private let condition = NSCondition()

    public init() {}

    public func lock() { condition.lock() }

    public func unlock() { condition.unlock() }

    /// Runs `body` holding the lock.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Waits (holding the lock) until signalled; may wake spuriously, as `NSCondition` does.
    public func wait() { condition.wait() }

    /// Waits (holding the lock) until signalled or `deadline`: true when woken before it, false
    /// when the deadline passed. Any date works (a far one, `.distantFuture`, an infinite interval):
    /// it is waited out in slices, each no longer than `longestWaitSeconds`.
    @discardableResult
    public func wait(until deadline: Date) -> Bool {
        while true {
            let slice = Date(timeIntervalSinceNow: Self.longestWaitSeconds)
            if deadline <= slice { return condition.wait(until: deadline) }
            if condition.wait(until: slice) { return true }
        }
    }

    /// Wakes one waiting thread (call it holding the lock).
    public func signal() { condition.signal() }

    /// Wakes every waiting thread (call it holding the lock).
    public func broadcast() { condition.broadcast() }
}
