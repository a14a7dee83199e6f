import XCTest

@testable import LockProofBench

/// The verdicts are computed from what was measured: each one flips when the measurement does,
/// and a claim nothing measured is "not measured", never a pass.
final class ClaimVerdictTests: XCTestCase {
    private func verdicts(_ measured: ClaimMeasurements) -> [Int: ClaimVerdict.Verdict] {
        let empty = BenchResults(
            preset: "test", startedAt: "", seconds: 0, cells: [], scripts: [:], redisLockCosts: [], claims: [], errors: [])
        return Dictionary(uniqueKeysWithValues: judgeClaims(empty, measured).map { ($0.number, $0.verdict) })
    }

    func testNothingMeasuredIsNeverAPass() {
        let judged = verdicts(ClaimMeasurements())
        XCTAssertEqual(Set(judged.keys), Set(1...10), "every claim gets a verdict")
        for (number, verdict) in judged {
            XCTAssertEqual(verdict, .notMeasured, "claim \(number) judged without a measurement")
        }
    }

    func testTheAppCheckShareDecidesClaim6() {
        var measured = ClaimMeasurements()
        measured.duplicatesByAppCheck = 99
        measured.duplicatesByConstraint = 1
        XCTAssertEqual(verdicts(measured)[6], .holds, "99% stopped by the app check")
        measured.duplicatesByAppCheck = 90
        measured.duplicatesByConstraint = 10
        XCTAssertEqual(verdicts(measured)[6], .doesNotHold, "90% is not about 99%")
    }

    func testOneInexactCouponRunBreaksClaim7() {
        var measured = ClaimMeasurements()
        measured.couponRuns = 3
        measured.couponRunsExact = 3
        XCTAssertEqual(verdicts(measured)[7], .holds)
        measured.couponRunsExact = 2
        XCTAssertEqual(verdicts(measured)[7], .doesNotHold)
    }

    func testOrdersBeyondStockRefuteClaim8() {
        var measured = ClaimMeasurements()
        measured.oversellStock = 10
        measured.oversellCreated = 16
        measured.oversellCreatedQuantity = 16
        XCTAssertEqual(verdicts(measured)[8], .doesNotHold, "16 units ordered against 10 in stock")
        measured.oversellCreated = 10
        measured.oversellCreatedQuantity = 10
        XCTAssertEqual(verdicts(measured)[8], .conditional)
    }

    func testDeadlocksWithSortedLocksRefuteClaim9AndAQuietControlCannotTell() {
        var measured = ClaimMeasurements()
        measured.deadlockOperationsSorted = 100
        measured.deadlockOperationsUnsorted = 100
        measured.deadlocksUnsorted = 5
        XCTAssertEqual(verdicts(measured)[9], .holds, "none sorted, some unsorted")
        measured.deadlocksSorted = 1
        XCTAssertEqual(verdicts(measured)[9], .doesNotHold)
        measured.deadlocksSorted = 0
        measured.deadlocksUnsorted = 0
        XCTAssertEqual(verdicts(measured)[9], .conditional, "the control did not deadlock either")
    }
}
