import LockProofCommerce
import XCTest

@testable import LockProofBench

/// Constructed results: what bench.md and bench.html say a reader should pick, from given figures.
final class DecisionTableTests: XCTestCase {
    /// One repetition per throughput given, with that p99; the failures all in the first one;
    /// `held: false` adds a violation the checker caught.
    static func cell(
        _ strategy: String, _ contention: Contention = .hot, caseName: CaseName = .chargeBalance, clients: Int = 64,
        throughputs: [Double], p99: Double = 0.010, failures: [String: Int] = [:], held: Bool = true, retries: Int = 0
    ) -> CellResult {
        let runs = throughputs.enumerated().map { index, throughput in
            let failures = index == 0 ? failures : [:]
            return CellRun(
                seconds: 1, operations: Int(throughput), succeeded: Int(throughput) - failures.values.reduce(0, +),
                throughput: throughput, latencyP50: p99 / 10, latencyP95: p99 / 2, latencyP99: p99, latencyMax: p99 * 2,
                retryAttempts: retries, retryExhausted: failures["retry_exhausted"] ?? 0, optimisticConflicts: 0, deadlocks: 0,
                lockWaits: [], lockHolds: [], failures: failures, checks: ["conservation": held],
                violations: held ? [] : ["lost_update"], runError: nil)
        }
        return CellResult(
            key: BenchCellKey(caseName: caseName, strategy: strategy, clients: clients, contention: contention), runs: runs,
            ceilingRuns: [], errors: [])
    }

    static func results(_ cells: [CellResult], claims: [ClaimVerdict] = []) -> BenchResults {
        BenchResults(
            preset: "test preset", startedAt: "2026-12-04T18:00:00Z", seconds: 1, cells: cells, scripts: [:], redisLockCosts: [],
            claims: claims, errors: [])
    }

    /// The case: optimistic-retry hot came first in "fastest correct strategy" without
    /// saying it dropped 67 charges. Now it is marked, not ranked, and named as the faster one left out.
    func testAStrategyThatFailedOperationsIsMarkedAndNeverRankedSilently() throws {
        let results = Self.results([
            Self.cell("optimistic-retry", throughputs: [3000, 3100], failures: ["retry_exhausted": 67]),
            Self.cell("pessimistic", throughputs: [1000, 1050], p99: 0.120),
            Self.cell("atomic", throughputs: [2000, 2100], p99: 0.040),
            Self.cell("naive", throughputs: [5000, 5000], held: false),
        ])
        let ranking = results.ranking(.chargeBalance, .hot, 64).map(\.key.strategy)
        XCTAssertEqual(ranking, ["atomic", "pessimistic", "optimistic-retry", "naive"])

        let table = try XCTUnwrap(DecisionTable(results, .chargeBalance))
        let ranks = Dictionary(uniqueKeysWithValues: table.rows.map { ($0.key.strategy, $0.rank) })
        XCTAssertEqual(ranks["atomic"], 1)
        XCTAssertEqual(ranks["pessimistic"], 2)
        XCTAssertEqual(ranks["optimistic-retry"], Optional<Int>.none, "failed 67 operations: not ranked")
        XCTAssertEqual(ranks["naive"], Optional<Int>.none, "control, invariant broken")

        XCTAssertTrue(table.pick.contains("With 64 clients on one hot row, pick **atomic**: 2,050 ops/s, p99 40 ms"), table.pick)
        XCTAssertTrue(
            table.pick.contains("optimistic-retry was faster (3,050 ops/s) but is not a pick: 67 failed operations (retry_exhausted 67)"),
            table.pick)
        XCTAssertTrue(table.pick.contains("naive was faster (5,000 ops/s) but is not a pick: deliberately broken control: invariant broken (lost_update)"), table.pick)

        let markdown = table.markdown
        XCTAssertTrue(markdown.contains("| hot | 64 | not ranked | optimistic-retry | 3,050 [3,000–3,100] | 10 ms | ⚠ 67 of 6100 (retry_exhausted 67) | ✓ held |"), markdown)
        XCTAssertTrue(markdown.contains("| hot | 64 | 1 | atomic | 2,050 [2,000–2,100] | 40 ms | 0 | ✓ held |"), markdown)
        XCTAssertTrue(markdown.contains("| naive (control) |"), markdown)
        XCTAssertTrue(markdown.contains("✗ broken"), markdown)

        // The old ranking section said "fastest correct" and listed optimistic-retry first, unmarked.
        let report = BenchReport.markdown(results)
        XCTAssertTrue(report.contains("optimistic-retry 3050 [3000–3100] ✗ not ranked: 67 failed operations (retry_exhausted 67)"), report)
        XCTAssertLessThan(
            try XCTUnwrap(report.range(of: "### What to pick")).lowerBound, try XCTUnwrap(report.range(of: "Throughput as a ratio")).lowerBound,
            "the decision table opens the report")
        let html = decisionHTML(results)
        XCTAssertTrue(html.contains("<span class=\"bad\">⚠ 67</span> of 6100 (retry_exhausted 67)"), html)
    }

    func testBusinessRefusalsAreNotFailedOperations() {
        let cell = Self.cell("seed", caseName: .createOrder, throughputs: [100], failures: ["insufficient_stock": 40, "deadlock": 2])
        XCTAssertEqual(cell.failedOperations, 2)
        XCTAssertEqual(cell.failedOperationsByReason, ["deadlock": 2])
    }

    func testThePickNamesTheWinnerPerContentionAndTheLeaderAtFewClientsWhenItDiffers() throws {
        let results = Self.results([
            Self.cell("pessimistic", .hot, throughputs: [900, 950]),
            Self.cell("atomic", .hot, throughputs: [400, 420]),
            Self.cell("pessimistic", .spread, throughputs: [1000, 1010]),
            Self.cell("atomic", .spread, throughputs: [3000, 3030]),
            Self.cell("pessimistic", .spread, clients: 1, throughputs: [300, 310]),
            Self.cell("atomic", .spread, clients: 1, throughputs: [200, 205]),
        ])
        let pick = try XCTUnwrap(DecisionTable(results, .chargeBalance)).pick
        XCTAssertTrue(pick.hasPrefix("Pick pessimistic when writes meet on one hot row, atomic when they spread over many rows."), pick)
        XCTAssertTrue(pick.contains("With 1 client spread over many rows, pessimistic leads instead: 305 ops/s"), pick)
        XCTAssertFalse(pick.contains("tied"), pick)
    }

    func testOverlappingRepetitionsAreATieAndAWideSpreadIsWarned() throws {
        let results = Self.results([
            Self.cell("pessimistic", throughputs: [900, 1000, 1500]),
            Self.cell("atomic", throughputs: [850, 950, 980]),
        ])
        let table = try XCTUnwrap(DecisionTable(results, .chargeBalance))
        let pick = table.pick
        // Flagged too wide to rank is never ranked (bench.json cannot say rank 1 and spread_too_wide_to_rank).
        let wide = try XCTUnwrap(table.rows.first { $0.key.strategy == "pessimistic" })
        XCTAssertNil(wide.rank)
        XCTAssertEqual(wide.cell.notRankedBecause, "spread too wide to rank: its repetitions disagree by 60% (more than 30%)")
        XCTAssertEqual(table.rows.first { $0.key.strategy == "atomic" }?.rank, 1)
        XCTAssertTrue(pick.contains("pick **atomic**: 950 ops/s"), pick)
        XCTAssertTrue(
            pick.contains("pessimistic was faster (1,000 ops/s) but is not a pick: spread too wide to rank: its repetitions disagree by 60%"), pick)
        // Two narrow cells whose repetitions overlap are tied.
        let tied = try XCTUnwrap(
            DecisionTable(
                Self.results([Self.cell("pessimistic", throughputs: [900, 1000, 1100]), Self.cell("atomic", throughputs: [850, 950, 980])]),
                .chargeBalance)
        ).pick
        XCTAssertTrue(tied.contains("atomic (950 ops/s) is within the repetitions' spread of it, so the two are tied here"), tied)
        // A slower noisy cell that may be as fast leaves the pick open too.
        let slowerNoisy = try XCTUnwrap(
            DecisionTable(
                Self.results([Self.cell("pessimistic", throughputs: [500, 900, 1200]), Self.cell("atomic", throughputs: [1000, 1010])]),
                .chargeBalance)
        ).pick
        XCTAssertTrue(slowerNoisy.contains("pessimistic (900 ops/s) may be as fast but is not ranked: spread too wide to rank"), slowerNoisy)
        let warnings = BenchWarnings.wideSpreads(results)
        XCTAssertEqual(warnings.count, 1, "only pessimistic (60%); atomic's 14% is fine: \(warnings)")
        XCTAssertTrue(warnings[0].hasPrefix("charge-balance/pessimistic/hot/c64: 1000 ops/s median, 900–1500 over 3 repetitions (spread 60% > 30%)"), warnings[0])
        XCTAssertTrue(BenchReport.markdown(results).contains("**Spread too wide to rank**"))
        // The opening sentence does not present an unsettled pick as a plain answer.
        var both = results
        both.cells += [
            Self.cell("pessimistic", .spread, throughputs: [900, 910]), Self.cell("atomic", .spread, throughputs: [2000, 2010]),
        ]
        let bothPick = try XCTUnwrap(DecisionTable(both, .chargeBalance)).pick
        XCTAssertTrue(
            bothPick.hasPrefix(
                "Pick atomic (not settled by this run: a tie or too wide a spread) when writes meet on one hot row, atomic when they spread over many rows."),
            bothPick)
        // One repetition has no spread to judge: no warning.
        XCTAssertTrue(BenchWarnings.wideSpreads(Self.results([Self.cell("atomic", throughputs: [5])])).isEmpty)
    }

    func testNoUsableStrategyIsSaid() throws {
        let results = Self.results([Self.cell("optimistic-retry", throughputs: [10], failures: ["retry_exhausted": 3])])
        let pick = try XCTUnwrap(DecisionTable(results, .chargeBalance)).pick
        XCTAssertEqual(pick, "With 64 clients on one hot row, no strategy kept its invariant without failing operations: none to pick.")
        let noisyOnly = try XCTUnwrap(DecisionTable(Self.results([Self.cell("atomic", throughputs: [500, 1000, 1500])]), .chargeBalance)).pick
        XCTAssertTrue(noisyOnly.hasSuffix("with repetitions that agree closely enough to rank: none to pick."), noisyOnly)
    }
}
