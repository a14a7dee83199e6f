import Foundation
import LockProofSync
import XCTest

/// WaitCondition, the one condition variable: a wait ends when signalled or at its deadline, and a
/// deadline however far ahead neither traps nor keeps a signalled waiter asleep.
final class WaitConditionTests: XCTestCase {
    /// Waits on `condition` until `deadline` in a thread of its own; the result once it returns.
    private func waiter(_ condition: WaitCondition, until deadline: Date, ready: DispatchSemaphore) -> () -> Bool? {
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            condition.lock()
            ready.signal()
            box.value = condition.wait(until: deadline)
            condition.unlock()
            done.signal()
        }.start()
        return { done.wait(timeout: .now() + 10) == .success ? box.value : nil }
    }

    func testAFarDeadlineIsWokenBySignalWithoutTrapping() {
        for interval in [1e10, 1e300, Double.infinity] {
            let condition = WaitCondition()
            let ready = DispatchSemaphore(value: 0)
            let result = waiter(condition, until: Date(timeIntervalSinceNow: interval), ready: ready)
            XCTAssertEqual(ready.wait(timeout: .now() + 10), .success)
            // The waiter holds the lock until it is inside its wait: taking it here means it waits.
            condition.withLock { condition.broadcast() }
            XCTAssertEqual(result(), true, "\(interval): a signalled wait must end, woken (true)")
        }
    }

    func testAPassedDeadlineEndsTheWaitWithFalse() {
        let condition = WaitCondition()
        let ready = DispatchSemaphore(value: 0)
        let result = waiter(condition, until: Date(timeIntervalSinceNow: 0.05), ready: ready)
        XCTAssertEqual(ready.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(result(), false, "an unsignalled wait must end at its deadline, timed out (false)")
    }
}

private final class ResultBox: @unchecked Sendable {
    var value: Bool?
}
