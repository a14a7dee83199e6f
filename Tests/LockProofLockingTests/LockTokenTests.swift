import XCTest

@testable import LockProofLocking

/// The lock token replaced UUID().uuidString for speed; it must stay as unique and as long.
final class LockTokenTests: XCTestCase {
    func testTokensAre128BitHexAndDistinct() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let token = lockToken()
            XCTAssertEqual(token.count, 32, token)
            XCTAssertTrue(token.allSatisfy { $0.isHexDigit && !$0.isUppercase }, token)
            seen.insert(token)
        }
        XCTAssertEqual(seen.count, 10_000)
    }

    /// The row-lock clock keeps one time per thread, and an enclosing transaction's survives a nested one.
    func testRowLockClockIsPerThreadAndRestored() {
        let outer = RowLockClock.start()
        XCTAssertNil(RowLockClock.firstAcquired)
        RowLockClock.acquired(at: 12.5)
        RowLockClock.acquired(at: 13.0)
        XCTAssertEqual(RowLockClock.firstAcquired, 12.5)
        let enclosing = RowLockClock.start()
        XCTAssertEqual(enclosing, 12.5)
        XCTAssertNil(RowLockClock.firstAcquired)
        let other = DispatchSemaphore(value: 0)
        Thread {
            XCTAssertNil(RowLockClock.firstAcquired)
            other.signal()
        }.start()
        XCTAssertEqual(other.wait(timeout: .now() + 10), .success)
        RowLockClock.restore(enclosing)
        XCTAssertEqual(RowLockClock.firstAcquired, 12.5)
        RowLockClock.restore(outer)
        XCTAssertEqual(RowLockClock.firstAcquired, outer)
    }
}
