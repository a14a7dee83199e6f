import Foundation
import LockProofSync

/// Releases every waiting thread at once when the last of `parties` arrives: all clients of a
/// concurrency test or a scenario start at the same moment.
public final class StartBarrier: @unchecked Sendable {
    private let condition = WaitCondition()
    private var waiting: Int

    public init(parties: Int) { waiting = parties }

    public func arriveAndWait() {
        condition.lock()
        waiting -= 1
        if waiting <= 0 { condition.broadcast() }
        while waiting > 0 { condition.wait() }
        condition.unlock()
    }
}
