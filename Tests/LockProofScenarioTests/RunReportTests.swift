import Foundation
import LockProofRedis
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// report.html and junit.xml say why: an anomaly is named and said with its numbers, a failed
/// threshold shows its observed value against its limit, and the counts add up.
final class RunReportTests: XCTestCase {
    private func charge(client: Int, index: Int = 0, start: Double, end: Double, wrote balance: Int) -> HistoryEntry {
        HistoryEntry(
            client: client, index: index, operation: .charge, arguments: ["user": 7, "amount": 1000], items: nil, start: start, end: end,
            outcome: .ok, reason: nil, result: ["balance": balance, "applied": 1, "attempts": 1])
    }

    private let belowAcknowledged = Violation(
        name: "balance-below-acknowledged", count: 1, firstExample: "user 7: balance 4000, the history allows 7000…7000 (initial 0)",
        evidence: ViolationEvidence(subject: ["user": 7], observed: 4000, expected: 7000))

    /// Three charges, then four that all read 3,000 at once: a lost update of three writes.
    func testALostUpdateIsNamedMarkedAndSaidWithItsNumbers() {
        let serial = (0..<3).map { charge(client: 0, index: $0, start: Double($0), end: Double($0) + 0.5, wrote: ($0 + 1) * 1000) }
        let race = (1...4).map { charge(client: $0, start: 10 + Double($0) * 0.01, end: 11 + Double($0) * 0.01, wrote: 4000) }
        let anomaly = AnomalyExplainer.explain(belowAcknowledged, checker: "money-conservation", history: serial + race)
        XCTAssertEqual(anomaly.name, "lost update")
        XCTAssertEqual(anomaly.subjectDescription, "user 7")
        XCTAssertEqual(
            anomaly.sentence,
            "4 charges read balance 3,000; 3 of their writes were lost: 3,000 missing overall (3 charges' worth; balance 4,000; the acknowledged charges require 7,000).")
        XCTAssertEqual(Set(anomaly.marked.map(\.client)), [1, 2, 3, 4], "the four racing charges, not the serial ones")
        XCTAssertEqual(anomaly.marked.filter(\.lost).count, 3)
        XCTAssertEqual(anomaly.marked.first { !$0.lost }?.client, 4, "the last to finish is the write that stayed")
        XCTAssertEqual(anomaly.marked[0].role, "read balance 3,000, wrote 4,000: overwritten")
    }

    /// Two races in the history while the checker finds more missing than they show: the races are
    /// counted as races, the total is the checker's, and no count of lost writes contradicts it
    /// (old code: "3 writes lost in 2 such races … 5,000 missing" with charges of 1,000).
    func testSeveralRacesAreCountedAsRacesAndTheTotalIsTheCheckersOwn() {
        let first = (1...3).map { charge(client: $0, start: 1 + Double($0) * 0.01, end: 2 + Double($0) * 0.01, wrote: 1000) }
        let second = (4...5).map { charge(client: $0, start: 5 + Double($0) * 0.01, end: 6 + Double($0) * 0.01, wrote: 2000) }
        let violation = Violation(
            name: "balance-below-acknowledged", count: 1, firstExample: "user 7: balance 2000, the history allows 7000…7000 (initial 0)",
            evidence: ViolationEvidence(subject: ["user": 7], observed: 2000, expected: 7000))
        let anomaly = AnomalyExplainer.explain(violation, checker: "money-conservation", history: first + second)
        XCTAssertEqual(anomaly.name, "lost update")
        XCTAssertEqual(
            anomaly.sentence,
            "3 charges read balance 0; 2 of their writes were lost (2 such races in the history on user 7): "
                + "5,000 missing overall (5 charges' worth; balance 2,000; the acknowledged charges require 7,000).")
        XCTAssertFalse(anomaly.sentence.contains("writes lost in"), anomaly.sentence)
    }

    /// Negative control: the same charges one after another race nowhere, so no lost update is
    /// claimed; the checker's own words are shown instead.
    func testChargesOneAfterAnotherAreNoLostUpdate() {
        let serial = (0..<4).map { charge(client: $0, index: 0, start: Double($0), end: Double($0) + 0.5, wrote: ($0 + 1) * 1000) }
        let anomaly = AnomalyExplainer.explain(belowAcknowledged, checker: "money-conservation", history: serial)
        XCTAssertNotEqual(anomaly.name, "lost update")
        XCTAssertFalse(anomaly.explained)
        XCTAssertTrue(anomaly.marked.isEmpty)
        XCTAssertEqual(anomaly.sentence, belowAcknowledged.firstExample + ".")
    }

    /// The time axis is ticked at 1, 2 or 5 × 10ⁿ ms, and a fault is shaded on the same axis.
    func testTheTimelineHasATickedAxisAndTheFaultWindow() {
        XCTAssertEqual(RunReportHTML.tickStep(span: 160), 20)
        XCTAssertEqual(RunReportHTML.tickStep(span: 0.9), 0.2)
        XCTAssertEqual(RunReportHTML.tickStep(span: 4000), 500)
        let race = (1...4).map { charge(client: $0, start: 0.100 + Double($0) * 0.010, end: 0.200 + Double($0) * 0.010, wrote: 4000) }
        let fault = FaultRecord(kind: "redis-pause", start: 0.150, end: 0.180, targets: [], hits: nil, note: nil, error: nil)
        let outside = FaultRecord(kind: "pg-terminate", start: 5, end: 6, targets: [], hits: nil, note: nil, error: nil)
        let marks = [MarkedOperation(client: 1, index: 0, role: "overwritten", lost: true)]
        // The windows as the report reads them: from the nemesis' entries of the history.
        let windows = FaultWindow.windows([fault, outside].flatMap(NemesisEntry.entries(of:)))
        let svg = RunReportHTML.svg(race, marked: marks, faults: windows)
        XCTAssertEqual(svg.components(separatedBy: "<g class=\"fault\">").count - 1, 1, "only the fault inside the window")
        XCTAssertTrue(svg.contains(">redis-pause</text>"), svg)
        for tick in ["120", "140", "160", "180", "200"] {
            XCTAssertTrue(svg.contains("text-anchor=\"middle\">\(tick)</text>"), "tick \(tick) ms missing")
        }
        XCTAssertTrue(svg.contains("fill=\"#e33\""), "the marked operation is red")
        XCTAssertEqual(svg.components(separatedBy: "fill=\"#e33\"").count - 1, 1, "and only it")
    }

    private func scenario(_ name: String, strategy: String, expect: String, thresholds: String = "") throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: \(name)
            case: charge-balance
            strategy: \(strategy)
            seed: {users: 1, balance: 0}
            workload: {virtual_users: 8, iterations: 5, amount: 1000}
            expect: \(expect)
            \(thresholds.isEmpty ? "" : "thresholds:\n" + thresholds)
            """, file: "\(name).yaml")
    }

    private func run(_ scenario: Scenario, in directory: URL) throws -> ScenarioResult {
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.historyDirectory = directory
        return try runner.run(scenario)
    }

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockproof-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    func testAFailedThresholdPageShowsEveryFailedThresholdAndTheRunsFigures() throws {
        let directory = try temporaryDirectory()
        let result = try run(
            try scenario(
                "r-thresholds", strategy: "atomic", expect: "pass",
                thresholds: "  latency: [\"p(99) < 0.1us\"]\n  throughput: [\"rate > 1000000000\"]\n  errors: [\"count == 0\"]"),
            in: directory)
        XCTAssertEqual(result.status, .fail, ReportWriter.summary(result))
        let page = RunReportHTML.page([result])
        XCTAssertTrue(page.contains("threshold <b>latency p(99) &lt; 0.1us</b> failed: latency p(99) = "), page)
        XCTAssertTrue(page.contains(" breaks &lt; 0.1us"), "the observed value against its limit")
        XCTAssertTrue(page.contains("threshold <b>throughput rate &gt; 1000000000</b> failed: throughput rate = "), page)
        XCTAssertFalse(page.contains("threshold <b>errors"), "a threshold that held is not a reason")
        // 40 operations for a p(99): the threshold's warning is on the page as in the terminal.
        XCTAssertTrue(page.contains("<li class=\"warning\">warning: 'p(99) &lt; 0.1us' on latency was judged on 40 samples"), page)
        for figure in ["throughput: ", "latency: p50 ", "operations: 40 ok"] {
            XCTAssertTrue(page.contains(figure), "\(figure) missing from\n\(page)")
        }
        XCTAssertFalse(page.contains("<figure"), "no anomaly, no timeline")
        XCTAssertFalse(page.contains("No violation was caught"), "a FAIL says why, not what did not happen")

        // 2 checks, 3 thresholds, operations performed.
        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("<testsuites name=\"lockproof\" tests=\"6\" failures=\"2\" errors=\"0\""), junit)
        XCTAssertTrue(junit.contains("<property name=\"throughput_per_second\" value=\""), junit)
    }

    func testACaughtLostUpdatePageNamesItAndJUnitCarriesItsText() throws {
        let directory = try temporaryDirectory()
        let result = try run(try scenario("r-naive", strategy: "naive", expect: "violation"), in: directory)
        XCTAssertTrue(result.violationCaught, ReportWriter.summary(result))
        let page = RunReportHTML.page([result])
        XCTAssertTrue(page.contains("<p class=\"sentence\"><b>Lost update:</b> "), page)
        XCTAssertTrue(page.contains(" charges read balance "), page)
        XCTAssertTrue(page.contains("<figure class=\"plot\""), page)
        XCTAssertEqual(page.components(separatedBy: "<figure").count - 1, 1, "one timeline for the lost update, not one per violation")

        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("<system-out>balance-below-acknowledged ×"), junit)
        // The counts add up: the testsuites total is the sum of its suite's.
        let suiteTests = junit.split(separator: "\n").filter { $0.contains("<testcase ") }.count
        XCTAssertTrue(junit.contains("<testsuites name=\"lockproof\" tests=\"\(suiteTests)\""), junit)

        let report = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ScenarioReport(result))) as! [String: Any]
        XCTAssertEqual(report["schema_version"] as? Int, ScenarioReport.currentSchemaVersion)
        XCTAssertEqual(report["tool"] as? String, "lockproof")
        let machine = report["machine"] as? [String: Any]
        XCTAssertGreaterThan(machine?["cores"] as? Int ?? 0, 0)
        XCTAssertNotNil(machine?["postgresql_version"] as? String, "\(machine ?? [:])")
        XCTAssertNotNil(machine?["redis_version"] as? String, "\(machine ?? [:])")
        XCTAssertLessThanOrEqual(report["started_at"] as! String, report["ended_at"] as! String)
    }

    /// The server versions are asked once per process: Redis counts no new connection for a
    /// second, third and fourth scenario's report (old code: one per scenario), while a direct
    /// probe still connects (the count is not blind).
    func testServerVersionsAreAskedOncePerProcess() throws {
        let configuration = TestServers.configuration
        let first = MachineInfo.probeOnce(configuration)
        XCTAssertNotNil(first.redisVersion)
        XCTAssertNotNil(first.postgresqlVersion)
        let redis = try RedisConnection(endpoint: configuration.redis, commandTimeout: 5)
        func connectionsReceived() throws -> Int {
            let info = try redis.checked(["INFO", "stats"]).text ?? ""
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_connections_received:") }
            return Int(line?.dropFirst("total_connections_received:".count) ?? "") ?? -1
        }
        let before = try connectionsReceived()
        for _ in 0..<3 { XCTAssertEqual(MachineInfo.probeOnce(configuration), first) }
        XCTAssertEqual(try connectionsReceived(), before, "no connection for an answer already known")
        _ = MachineInfo.probe(configuration)
        XCTAssertEqual(try connectionsReceived(), before + 1, "a probe that asks is counted")
    }
}
