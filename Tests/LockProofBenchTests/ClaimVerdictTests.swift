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

    private func judged(_ cells: [CellResult], _ measured: ClaimMeasurements = ClaimMeasurements()) -> [Int: ClaimVerdict] {
        Dictionary(uniqueKeysWithValues: judgeClaims(DecisionTableTests.results(cells), measured).map { ($0.number, $0) })
    }

    /// Claim 3 "held" while the same evidence showed the lock-free strategy 3.5× faster: both are said.
    func testClaim3SaysBothWhenTheLockFreeStrategyIsFaster() throws {
        let claims = judged([
            DecisionTableTests.cell("seed", throughputs: [1000], p99: 0.010, retries: 10),
            DecisionTableTests.cell("optimistic-retry", throughputs: [3500], p99: 0.050, retries: 2000),
        ])
        let claim = try XCTUnwrap(claims[3])
        XCTAssertEqual(claim.verdict, .holds)
        XCTAssertEqual(
            claim.summary,
            "Without the Redis lock, retries and p99 waits climb. Yet the strategy without the lock finished 3.5× as many operations per second (3500 vs 1000), without failing an operation: the lock costs more than the retries it saves.")
        XCTAssertEqual(claim.measuredBy, ["charge-balance optimistic-retry: hot, 64 clients", "charge-balance seed: hot, 64 clients"])
        XCTAssertEqual(claim.cells, ["charge-balance/optimistic-retry/hot/c64", "charge-balance/seed/hot/c64"])
    }

    /// "does not hold" on "optimistic would lose money" is good news for optimistic: said plainly.
    func testClaim5IsSaidWithoutADoubleNegative() throws {
        var measured = ClaimMeasurements()
        measured.naiveChargeOperations = 320
        measured.naiveChargeViolations = ["lost_update ×3"]
        let claims = judged([DecisionTableTests.cell("optimistic-retry", throughputs: [100])], measured)
        let claim = try XCTUnwrap(claims[5])
        XCTAssertEqual(claim.verdict, .doesNotHold)
        XCTAssertTrue(claim.summary.hasPrefix("Good news for optimistic locking: its version check lost no money in any cell"), claim.summary)
        XCTAssertTrue(claim.measuredBy.contains("16 clients charging one balance with no lock (naive)"), "\(claim.measuredBy)")
        XCTAssertFalse(claim.measuredBy.contains { $0.contains("/c") || $0.hasPrefix("experiment ") }, "\(claim.measuredBy)")
    }

    /// A conditional verdict states its conditions: claim 1 says where optimistic wins and where
    /// not, and names the faster strategy it left out for failing operations.
    func testConditionalVerdictsStateTheirConditions() throws {
        let claims = judged([
            DecisionTableTests.cell("optimistic-retry", .hot, throughputs: [3000], failures: ["retry_exhausted": 67]),
            DecisionTableTests.cell("pessimistic", .hot, throughputs: [1000]),
            DecisionTableTests.cell("optimistic-retry", .spread, throughputs: [5000]),
            DecisionTableTests.cell("pessimistic", .spread, throughputs: [4000]),
        ])
        let claim1 = try XCTUnwrap(claims[1])
        XCTAssertEqual(claim1.verdict, .conditional)
        XCTAssertEqual(
            claim1.summary,
            "Optimistic locking is fastest only with 64 clients spread over many rows; elsewhere another strategy is: 64 clients on one hot row (pessimistic first). (Faster but not ranked: optimistic-retry at 64 clients on one hot row (3000 ops/s) is faster but 67 failed operations (retry_exhausted 67).)")
        let claim2 = try XCTUnwrap(claims[2])
        XCTAssertEqual(claim2.verdict, .conditional)
        XCTAssertEqual(
            claim2.summary,
            "Ten retries are enough only where contention is low: 67 operations ran out of attempts, all in 64 clients on one hot row (charge-balance optimistic-retry).")
    }

    func testEveryClaimHasAPlainSummary() {
        for claim in judgeClaims(DecisionTableTests.results([]), ClaimMeasurements()) {
            XCTAssertTrue(claim.summary.hasPrefix("Not measured: "), "\(claim.number): \(claim.summary)")
        }
    }
}
