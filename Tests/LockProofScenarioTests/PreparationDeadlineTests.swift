import Foundation
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// The preparation's deadline cancels the preparing session's statement; a cancel that finds the
/// session between two statements cancels nothing, so it is sent again until the preparation ends.
final class PreparationDeadlineTests: XCTestCase {
    func testAStatementStartedAfterAMissedCancelIsCancelledToo() throws {
        let db = try TestServers.database()
        let deadline = PreparationDeadline(seconds: 0.05, backendPID: db.backendPID, configuration: TestServers.configuration)
        // Idle past the deadline, as a preparation reading a large result: the first cancel finds no statement.
        Thread.sleep(forTimeInterval: 0.5)
        // Unbounded, this would sleep 30 s and return; a later cancel ends it.
        XCTAssertThrowsError(try db.query("SELECT pg_sleep(30)")) { error in
            XCTAssertTrue("\(error)".contains("cancel"), "\(error)")
        }
        XCTAssertTrue(deadline.finish(), "the deadline passed")
        XCTAssertEqual(try db.query("SELECT 1").int(0, 0), 1, "the session is usable after the cancel")
    }

    func testAPreparationThatEndsInTimeIsNeverCancelled() throws {
        let db = try TestServers.database()
        let deadline = PreparationDeadline(seconds: 30, backendPID: db.backendPID, configuration: TestServers.configuration)
        XCTAssertEqual(try db.query("SELECT 1").int(0, 0), 1)
        XCTAssertFalse(deadline.finish())
        XCTAssertEqual(try db.query("SELECT pg_sleep(0.3), 1").int(0, 1), 1, "no cancel after the finish")
    }
}
