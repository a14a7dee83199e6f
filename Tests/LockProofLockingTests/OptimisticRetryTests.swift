import LockProofLocking
import LockProofPostgres
import LockProofTestSupport
import XCTest

final class OptimisticRetryTests: XCTestCase {
    private let fast = RetryPolicy(maxAttempts: 10, baseDelay: 0.0001, maxDelay: 0.001, jitter: true)

    func testExhaustionReportsTheAttemptsMade() {
        let sink = RecordingEventSink()
        var calls = 0
        XCTAssertThrowsError(
            try withOptimisticRetry(fast, probe: Probe(caseName: "c", sink: sink)) { _ -> Int in
                calls += 1
                throw OptimisticConflict(entity: "user", id: 1)
            }) {
            XCTAssertEqual(($0 as? RetryExhausted)?.attempts, 10)
        }
        XCTAssertEqual(calls, 10)
        XCTAssertEqual(sink.count { $0 == .retryAttempt }, 9)
        XCTAssertEqual(sink.count { $0 == .optimisticConflict(entity: "user") }, 10)
        XCTAssertEqual(sink.count { $0 == .retryExhausted }, 1)
        XCTAssertEqual(sink.count { $0 == .retryCall(.failedWithRetry) }, 1)
    }

    func testSucceedsAfterConflictsAndCountsRetries() throws {
        let sink = RecordingEventSink()
        let value = try withOptimisticRetry(fast, probe: Probe(caseName: "c", sink: sink)) { attempt -> Int in
            if attempt <= 3 { throw OptimisticConflict(entity: "user", id: 1) }
            return attempt
        }
        XCTAssertEqual(value, 4)
        XCTAssertEqual(sink.count { $0 == .retryAttempt }, 3)
        XCTAssertEqual(sink.events.last, .retryCall(.successfulWithRetry))
    }

    func testOtherErrorsAreNotRetried() {
        struct Refused: Error {}
        let sink = RecordingEventSink()
        var calls = 0
        XCTAssertThrowsError(
            try withOptimisticRetry(fast, probe: Probe(caseName: "c", sink: sink)) { _ -> Int in
                calls += 1
                throw Refused()
            }) { XCTAssertTrue($0 is Refused) }
        XCTAssertEqual(calls, 1)
        XCTAssertEqual(sink.events, [.retryCall(.failedWithoutRetry)])
    }

    func testSerializationFailuresAndDeadlocksAreRetried() throws {
        XCTAssertTrue(isRetryableConflict(PostgresError(kind: .serializationFailure, sqlState: "40001", message: "")))
        XCTAssertTrue(isRetryableConflict(PostgresError(kind: .deadlock, sqlState: "40P01", message: "")))
        XCTAssertFalse(isRetryableConflict(PostgresError(kind: .uniqueViolation, sqlState: "23505", message: "")))
    }

    func testBackoffGrowsExponentiallyUpToTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: 0.01, maxDelay: 0.05, jitter: false)
        XCTAssertEqual((1...5).map { policy.delay(beforeRetry: $0) }, [0.01, 0.02, 0.04, 0.05, 0.05])
        let jittered = RetryPolicy(maxAttempts: 10, baseDelay: 0.01, maxDelay: 0.05, jitter: true)
        for retry in 1...8 { XCTAssertLessThanOrEqual(jittered.delay(beforeRetry: retry), policy.delay(beforeRetry: retry)) }
    }
}
