import Foundation
import XCTest

@testable import LockProofLocking
import Synchronization

final class PeriodicThreadTests: XCTestCase {
    /// Counts passes under a lock; the tests only read it after `stop`, when no pass runs.
    private final class PassCounter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    func testFirstPassAtStartRunsBeforeTheFirstIntervalAndStopWakesTheThread() {
        let counter = PassCounter()
        let ran = DispatchSemaphore(value: 0)
        // An hour-long interval: only the first pass can run, and stop must not wait for the hour.
        let thread = PeriodicThread(name: "test-at-start", intervalSeconds: 3600, firstPass: .atStart) {
            counter.add()
            ran.signal()
        }
        thread.start()
        thread.start()  // a second start starts nothing
        XCTAssertEqual(ran.wait(timeout: .now() + 10), .success, "the first pass did not run at start")
        let stopped = DispatchSemaphore(value: 0)
        Thread { thread.stop(); stopped.signal() }.start()
        XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success, "stop waited for the interval instead of waking the thread")
        XCTAssertEqual(counter.value, 1)
    }

    func testAfterIntervalWaitsAndRepeatsUntilStopped() {
        let counter = PassCounter()
        let third = DispatchSemaphore(value: 0)
        let thread = PeriodicThread(name: "test-after-interval", intervalSeconds: 0.02, firstPass: .afterInterval) {
            counter.add()
            if counter.value == 3 { third.signal() }
        }
        thread.start()
        XCTAssertEqual(third.wait(timeout: .now() + 10), .success, "three passes did not run")
        thread.stop()
        let afterStop = counter.value
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(counter.value, afterStop, "a pass ran after stop returned")
        XCTAssertGreaterThanOrEqual(afterStop, 3)
    }

    func testNoPassBeforeTheIntervalWhenItMustAge() {
        let counter = PassCounter()
        let thread = PeriodicThread(name: "test-aging", intervalSeconds: 3600, firstPass: .afterInterval) { counter.add() }
        thread.start()
        Thread.sleep(forTimeInterval: 0.05)
        thread.stop()
        XCTAssertEqual(counter.value, 0, "work that must age ran before its interval")
    }

    /// `serve --recover-interval 1e10` died with SIGILL: Foundation's condition wait traps on a date
    /// that far ahead. Any interval, however long, must wait quietly and let `stop` wake it.
    func testAHugeIntervalWaitsWithoutTrappingAndStopsPromptly() {
        for interval in [1e10, 1e300, Double.infinity] {
            let counter = PassCounter()
            let ran = DispatchSemaphore(value: 0)
            let thread = PeriodicThread(name: "test-huge-\(interval)", intervalSeconds: interval, firstPass: .atStart) {
                counter.add()
                ran.signal()
            }
            thread.start()
            XCTAssertEqual(ran.wait(timeout: .now() + 10), .success, "\(interval): the first pass did not run")
            // Long enough for the thread to be inside its wait, where the old code trapped.
            Thread.sleep(forTimeInterval: 0.2)
            let stopped = DispatchSemaphore(value: 0)
            Thread { thread.stop(); stopped.signal() }.start()
            XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success, "\(interval): stop did not wake the thread")
            XCTAssertEqual(counter.value, 1, "\(interval): only the first pass may run")
        }
    }
}
