import Foundation
import LockProofCommerce
import LockProofPostgres
import LockProofScenario
import LockProofTestSupport
import XCTest

/// A verdict never hides a failure: broken, empty and interrupted runs are errors or failures in
/// the table, the JSON report and junit.xml; a run that lost every backend is still judged.
final class VerdictTests: XCTestCase {
    private func runner() -> ScenarioRunner {
        ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
    }

    private func parse(_ name: String, _ workload: String, expect: String = "pass", thresholds: String = "") throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: \(name)
            case: charge-balance
            strategy: atomic
            seed: {users: 4}
            workload: {\(workload)}
            expect: \(expect)
            \(thresholds.isEmpty ? "" : "thresholds:\n" + thresholds)
            """, file: "\(name).yaml")
    }

    func testAnAbortedRunIsAnErrorInTheTableTheReportAndJUnit() throws {
        let passing = try runner().run(try parse("v-ok", "virtual_users: 2, iterations: 2"))
        XCTAssertEqual(passing.status, .pass, ReportWriter.summary(passing))
        let aborted = ScenarioResult.error(try parse("v-aborted", "virtual_users: 2, iterations: 2"), "could not start every client: too many clients already")
        XCTAssertFalse(aborted.passed)
        XCTAssertEqual(aborted.status, .error)

        let table = ReportWriter.verdictTable([passing, aborted])
        XCTAssertTrue(table.contains("1 passed, 0 failed, 1 error"), table)
        XCTAssertTrue(table.split(separator: "\n").contains { $0.hasPrefix("v-aborted") && $0.hasSuffix("ERROR") }, table)
        XCTAssertTrue(table.contains("error: v-aborted: could not start every client"), table)

        let junit = ReportWriter.junit([passing, aborted])
        // Counted one way at each level: the passing run's 3 test cases (2 checks, operations
        // performed) and the aborted run's 1, not 2 scenarios.
        XCTAssertTrue(junit.contains("<testsuites name=\"lockproof\" tests=\"4\" failures=\"0\" errors=\"1\""), junit)
        XCTAssertTrue(junit.contains("<error message=\"could not start every client: too many clients already\">"), junit)

        let report = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ScenarioReport(aborted))) as! [String: Any]
        XCTAssertEqual(report["status"] as? String, "error")
        XCTAssertEqual(report["passed"] as? Bool, false)
        XCTAssertEqual(report["error"] as? String, "could not start every client: too many clients already")
        XCTAssertTrue(ReportWriter.summary(aborted).hasSuffix("verdict: ERROR (could not start every client: too many clients already)"))
    }

    func testAHangIsAnErrorNotAnException() throws {
        let result = try runner().run(try parse("v-hang", "virtual_users: 2, iterations: 100000, think_ms: 5, timeout: 300ms"))
        XCTAssertEqual(result.status, .error)
        XCTAssertTrue(result.runError?.contains("did not finish within") == true, result.runError ?? "")
        XCTAssertGreaterThan(result.operations.total, 0, "what ran before is still counted")
    }

    func testARunThatPerformedNoOperationFailsWhateverItsThresholds() throws {
        for expect in ["pass", "violation"] {
            let result = try runner().run(try parse(
                "v-empty", "virtual_users: 2, duration: 1e-300s", expect: expect, thresholds: "  errors: [\"count == 0\"]"))
            XCTAssertEqual(result.operations.total, 0)
            XCTAssertTrue(result.nothingTested)
            XCTAssertFalse(result.passed, "expect \(expect): nothing was tested, nothing passes")
            XCTAssertEqual(result.status, .fail)
            XCTAssertTrue(ReportWriter.summary(result).contains("verdict: FAIL (nothing was tested"), ReportWriter.summary(result))
            let junit = ReportWriter.junit([result])
            // The "operations performed" test case fails (with the threshold that saw no sample, or
            // the negative control that caught nothing).
            XCTAssertTrue(junit.contains("name=\"operations performed\">\n      <failure message=\"nothing was tested"), junit)
            XCTAssertTrue(junit.contains("<testsuites name=\"lockproof\" tests=\"4\" failures=\"2\""), junit)
        }
    }

    func testEveryBackendTerminatedMidRunIsReconnectedAndJudged() throws {
        let since = try TestServers.database().query("SELECT now()::text").string(0, 0)!
        let scenario = try parse("v-terminated", "virtual_users: 8, duration: 4s, think_ms: 2, pick: random")
        let killer = Thread {
            // Once the clients are connected (not while seeding, which may be slow on a loaded
            // machine), every session the run opened (the runner's own and every client's).
            let waited = Date()
            while Date().timeIntervalSince(waited) < 30 {
                let opened = (try? TestServers.database().query(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_start >= $1::timestamptz AND backend_type = 'client backend'",
                    [since]).int(0, 0)) ?? 0
                if opened >= 9 { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            Thread.sleep(forTimeInterval: 1)
            _ = try? TestServers.database().query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_start >= $1::timestamptz AND backend_type = 'client backend'",
                [since])
        }
        killer.start()
        let result = try runner().run(scenario)
        XCTAssertNil(result.runError, ReportWriter.summary(result))
        XCTAssertFalse(result.checks.isEmpty, "the scenario was judged")
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        XCTAssertGreaterThan(result.operations.total, 0)
    }

    func testAStopRequestEndsTheRunWithinASecondAsInterrupted() throws {
        let runner = runner()
        let stop = runner.stop
        let stopper = Thread {
            Thread.sleep(forTimeInterval: 1)
            stop.request("interrupted by SIGINT")
        }
        let started = Date()
        stopper.start()
        let result = try runner.run(try parse("v-interrupted", "virtual_users: 4, duration: 60s, think_ms: 1"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 6, "stopped within a second of the request (with room for a loaded machine), not after its 60 s")
        XCTAssertTrue(result.interrupted)
        XCTAssertEqual(result.status, .error)
        XCTAssertTrue(result.runError?.hasPrefix("interrupted by SIGINT") == true, result.runError ?? "")
        let next = try runner.run(try parse("v-after", "virtual_users: 1, iterations: 1"))
        XCTAssertTrue(next.interrupted, "nothing starts once a stop was requested")
    }

    /// A run leaves no session behind: its clients, fault hooks and all, are released. (With the
    /// fault hooks holding their client, every faulted run kept its 16 sessions; a full verify ran
    /// out of max_connections and its 200-client scenario could not start.)
    func testARunWithFaultsReleasesEveryClientSession() throws {
        let admin = try TestServers.database()
        func sessions() throws -> Int {
            try admin.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).int(0, 0)!
        }
        let before = try sessions()
        let scenario = try ScenarioParser.parse(
            """
            name: v-fault-sessions
            case: process-payment
            strategy: seed
            seed: {users: 4, balance: 1000000, products: 2, stock: 100000, orders: 64}
            workload: {virtual_users: 8, iterations: 3, pick: per-client}
            faults:
              - {kind: gateway-failure, start: 0s, duration: 2s, failure_rate: 0.3}
            """, file: "v-fault-sessions.yaml")
        let result = try runner().run(scenario)
        XCTAssertNil(result.runError, ReportWriter.summary(result))
        var after = try sessions()
        let waited = Date()
        while after > before && Date().timeIntervalSince(waited) < 10 {
            Thread.sleep(forTimeInterval: 0.2)
            after = try sessions()
        }
        XCTAssertLessThanOrEqual(after, before, "sessions left open by a finished run")
    }

    func testReportFileNamesCannotCollideAndAreLengthChecked() {
        XCTAssertNotEqual(ReportWriter.fileBase("x@vu1"), ReportWriter.fileBase("x-vu1"), "a sweep run and a scenario named like it")
        XCTAssertEqual(ReportWriter.reportFileProblems([("x@vu1", "a.yaml"), ("x-vu1", "b.yaml")]), [])
        let same = ReportWriter.reportFileProblems([("Rush", "a.yaml"), ("rush", "b.yaml")])
        XCTAssertEqual(same.count, 1)
        XCTAssertTrue(same[0].hasPrefix("b.yaml:1:1: error: run 'rush' and run 'Rush' of a.yaml would write the same report files"), same[0])
        let long = String(repeating: "n", count: 250)
        let tooLong = ReportWriter.reportFileProblems([(long, "l.yaml")])
        XCTAssertEqual(tooLong.count, 1)
        XCTAssertTrue(tooLong[0].contains("264 bytes long; at most 255"), tooLong[0])
        XCTAssertEqual(ReportWriter.reportFileProblems([(String(repeating: "n", count: 241), "l.yaml")]), [])
        XCTAssertEqual(ReportWriter.reportFileProblems([("junit", "j.yaml")]).count, 1)
    }
}
