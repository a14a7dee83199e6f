import Foundation
import XCTest

@testable import LockProofBench

/// `compare` reads bench.json as BenchReport writes it: a field renamed in the report without its
/// spelling added to ComparedField fails here, not in a user's hands.
final class ReportComparisonTests: XCTestCase {
    private func run(_ throughput: Double, held: Bool = true) -> CellRun {
        CellRun(
            seconds: 1, operations: 1_000, succeeded: 1_000, throughput: throughput, latencyP50: 0.001, latencyP95: 0.002,
            latencyP99: 0.004, latencyMax: 0.01, retryAttempts: 0, retryExhausted: 0, optimisticConflicts: 0, deadlocks: 0,
            lockWaits: [], lockHolds: [], failures: [:], checks: ["money": held], violations: held ? [] : ["lost_update"], runError: nil)
    }

    private func folder(_ throughputs: [Double], held: Bool = true) throws -> String {
        let key = BenchCellKey(caseName: .chargeBalance, strategy: "atomic", clients: 16, contention: .hot)
        let results = BenchResults(
            preset: "test", startedAt: "", seconds: 0,
            cells: [CellResult(key: key, runs: throughputs.map { run($0, held: held) }, ceilingRuns: [], errors: [])],
            scripts: [:], redisLockCosts: [], claims: [], errors: [])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-compare-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        try BenchReport.json(results).write(to: url.appendingPathComponent("bench.json"))
        return url.path
    }

    func testBenchReportsAreReadAndJudgedByTheRangesOfTheirRepetitions() throws {
        let baseline = try ReportSet.load(try folder([828, 1_651, 1_200]))
        let cell = try XCTUnwrap(baseline.entries["charge-balance/atomic/hot/c16"])
        XCTAssertEqual(cell.throughput, [828, 1_651, 1_200])
        XCTAssertEqual(cell.latencyP99, [0.004, 0.004, 0.004])
        XCTAssertEqual(cell.operations, 1_000)
        XCTAssertEqual(cell.verdict, "held")

        let overlapping = try ReportComparison(baseline: baseline, new: try ReportSet.load(try folder([900, 1_000, 1_100])), tolerance: 0.25)
        XCTAssertEqual(overlapping.rows.map(\.outcome), [.unchanged], "828–1651 and 900–1100 overlap: noise, though the median fell 17 %")
        XCTAssertTrue(overlapping.regressions.isEmpty)
        let apart = try ReportComparison(baseline: baseline, new: try ReportSet.load(try folder([500, 520, 540])), tolerance: 0.25)
        XCTAssertEqual(apart.rows.map(\.outcome), [.slower])
        let broke = try ReportComparison(
            baseline: baseline, new: try ReportSet.load(try folder([828, 1_651, 1_200], held: false)), tolerance: 0.25)
        XCTAssertEqual(broke.rows.map(\.outcome), [.verdictWorse])
        XCTAssertEqual(broke.rows.first?.new?.verdict, "broken")
    }

    /// A field missing from a report is named as the reports write it now, not by its legacy spelling.
    func testAMissingFieldIsNamedByItsCurrentName() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-compare-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        let cell = #"{"id": "charge-balance/atomic/hot/c16", "invariant_held": true, "negative_control": false, "errors": []}"#
        try Data(#"{"cells": [\#(cell)]}"#.utf8).write(to: url.appendingPathComponent("bench.json"))
        XCTAssertThrowsError(try ReportSet.load(url.path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("field 'repetitions' is missing"), "\(error)")
        }
    }

    /// A run aborted before its first operation writes an empty latency object: it is read as an
    /// error without a latency, and a completed run's missing p99 is still refused.
    func testAnAbortedRunIsAnErrorWithoutLatencyAndACompletedOneMustHaveIts() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-compare-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        let aborted = #"{"scenario": "a", "status": "error", "throughput_per_second": null, "operations": {"ok": 0, "fail": 0, "unknown": 0}, "latency_seconds": {}}"#
        try Data(aborted.utf8).write(to: url.appendingPathComponent("a.json"))
        let entry = try XCTUnwrap(try ReportSet.load(url.path).entries["a"])
        XCTAssertEqual(entry.verdict, "ERROR")
        XCTAssertEqual(entry.latencyP99, [])
        XCTAssertEqual(entry.operations, 0)
        let completed = #"{"scenario": "b", "status": "pass", "throughput_per_second": 10, "operations": {"ok": 5, "fail": 0, "unknown": 0}, "latency_seconds": {}}"#
        try Data(completed.utf8).write(to: url.appendingPathComponent("b.json"))
        XCTAssertThrowsError(try ReportSet.load(url.path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("field 'p99' is missing"), "\(error)")
        }
    }

    /// Ranges apart but within 10 %: a steady machine's small drift is no regression.
    func testRangesApartButCloseAreNoChange() {
        let close = ReportComparison.judge([1_000, 1_001], [960, 961], higherIsBetter: true, tolerance: 0.25, tooFew: nil)
        XCTAssertEqual(close.judgement, .unchanged)
        let single = ReportComparison.judge([1_000], [700], higherIsBetter: true, tolerance: 0.25, tooFew: nil)
        XCTAssertEqual(single.judgement, .slower)
        XCTAssertEqual(ReportComparison.judge([0.01], [0.02], higherIsBetter: false, tolerance: 0.25, tooFew: nil).judgement, .slower)
        XCTAssertEqual(ReportComparison.judge([1_000], [100], higherIsBetter: true, tolerance: 0.25, tooFew: "few").judgement, .notJudged)
    }
}
