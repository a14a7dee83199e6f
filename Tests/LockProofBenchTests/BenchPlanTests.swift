import LockProofCommerce
import XCTest

@testable import LockProofBench

/// What `--cases` and `--strategies` make the benchmark run, and the pools a fast machine grows.
final class BenchPlanTests: XCTestCase {
    private let charges = BenchCase.all.filter { $0.caseName == .chargeBalance }

    func testStrategiesOptionLimitsTheMatrixAndThePooledCells() {
        var preset = BenchPreset.quick
        preset.strategies = ["seed", "optimistic-retry", "pessimistic"]
        let cells = benchCells(preset, cases: charges)
        XCTAssertEqual(Set(cells.map(\.strategy)), ["seed", "optimistic-retry", "pessimistic"])
        XCTAssertEqual(Set(cells.map(\.caseName)), [.chargeBalance])
        XCTAssertEqual(cells.filter { $0.pool == nil }.count, 3 * 2 * 2, "3 strategies × hot/spread × clients 1, 64")
        XCTAssertEqual(Set(cells.filter { $0.pool != nil }.map(\.strategy)), ["seed", "pessimistic"])

        preset.strategies = ["optimistic-retry"]
        XCTAssertTrue(benchCells(preset, cases: charges).allSatisfy { $0.pool == nil }, "no pooled strategy selected")
        // Without the option the quick preset measures every strategy but the controls.
        XCTAssertEqual(
            Set(benchCells(.quick, cases: charges).map(\.strategy)),
            ["seed", "optimistic-retry", "pessimistic", "atomic", "redis-lock", "redis-lock-fenced"])
    }

    func testANegativeControlNamedInStrategiesIsMeasured() {
        var preset = BenchPreset.quick
        preset.strategies = ["naive", "atomic"]
        XCTAssertEqual(Set(benchCells(preset, cases: charges).map(\.strategy)), ["naive", "atomic"])
    }

    /// `--cases charge-balance` ran the coupon, oversell and deadlock experiments too.
    func testCasesOptionRunsOnlyTheirClaimExperiments() {
        XCTAssertEqual(claimExperimentNames(cases: charges, repetitions: 2), ["lost-update"])
        let couponsAndOrders = BenchCase.all.filter { [.issueCoupon, .createOrder].contains($0.caseName) }
        XCTAssertEqual(
            claimExperimentNames(cases: couponsAndOrders, repetitions: 2),
            ["coupon-duplicates", "coupon-200-for-100#1", "coupon-200-for-100#2", "coupon-200-for-100#3", "oversell",
             "deadlocks-seed", "deadlocks-unsorted"])
        XCTAssertEqual(claimExperimentNames(cases: BenchCase.all, repetitions: 3).count, 1 + 3 + 3 + 1 + 1)
    }

    func testTheHeaderSaysWhichOptionsOverrodeThePreset() {
        var preset = BenchPreset.full
        XCTAssertEqual(preset.title, "full preset")
        preset.overrides = ["--cases charge-balance", "--clients 1,8"]
        XCTAssertEqual(preset.title, "full preset with --cases charge-balance --clients 1,8")
        let results = DecisionTableTests.results([])
        var renamed = results
        renamed.preset = preset.title
        XCTAssertTrue(BenchReport.markdown(renamed).hasPrefix("## LockProof benchmark (full preset with --cases charge-balance --clients 1,8)"))
    }

    /// A claim the options left unmeasured fails the run (exit 1), as `--help` promises, and the
    /// report says which.
    func testAnUnmeasuredClaimFailsTheRun() {
        let measured = ClaimVerdict(number: 6, claim: "c", verdict: .holds, evidence: "e", measuredBy: [])
        let unmeasured = ClaimVerdict(number: 7, claim: "c", verdict: .notMeasured, evidence: "no coupon run was measured", measuredBy: [])
        XCTAssertFalse(DecisionTableTests.results([], claims: [measured]).failed)
        let results = DecisionTableTests.results([], claims: [measured, unmeasured])
        XCTAssertTrue(results.failed)
        XCTAssertFalse(results.hadErrors, "not an error: the options left it out")
        XCTAssertTrue(BenchReport.markdown(results).contains("**Claims not measured** (exit 1): 7 (no coupon run was measured)."))
    }

    /// The quick preset's order-state cell reached slot 38080 of 20000 orders on a fast machine:
    /// the pool grows to what the cell reached, and the scenario seeds it.
    func testAnOutrunPoolGrowsAndTheScenarioSeedsIt() throws {
        var preset = BenchPreset.quick
        XCTAssertEqual(preset.poolSize(.orderState), 20_000)
        preset.grow(.orderState, toHold: 76_160)
        XCTAssertEqual(preset.poolSize(.orderState), 76_160)
        XCTAssertEqual(preset.poolSize(.processPayment), 8_000, "another case's pool is unchanged")
        preset.grow(.orderState, toHold: 100)
        XCTAssertEqual(preset.poolSize(.orderState), 76_160, "never shrinks")
        let orderState = try XCTUnwrap(BenchCase.all.first { $0.caseName == .orderState })
        let scenario = try orderState.scenario(
            BenchCellKey(caseName: .orderState, strategy: "optimistic-retry", clients: 64, contention: .spread), preset: preset)
        XCTAssertEqual(scenario.seed.orders, 76_160)
        preset.grow(.issueCoupon, toHold: 50_000)
        let coupons = try XCTUnwrap(BenchCase.all.first { $0.caseName == .issueCoupon })
        XCTAssertEqual(
            try coupons.scenario(
                BenchCellKey(caseName: .issueCoupon, strategy: "seed", clients: 64, contention: .hot), preset: preset
            ).seed.users, 50_000)
    }
}
