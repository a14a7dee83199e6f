import Foundation
import LockProofCommerce
import LockProofScenario
import LockProofTestSupport
import XCTest

/// The suite loop as the scenario layer runs it (`lockproof run` and `verify` only parse and print
/// around it): results in order, NAME.json for each, junit.xml and report.html after the summary,
/// --fail-fast, and a refusal before anything ran reported in the report folder.
final class SuiteRunnerTests: XCTestCase {
    private func scenario(_ name: String, throughput: String = "count == 4", virtualUsers: Int = 2) throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: \(name)
            case: charge-balance
            strategy: atomic
            seed: {users: 1}
            workload: {virtual_users: \(virtualUsers), iterations: 2}
            thresholds:
              throughput: ["\(throughput)"]
            """, file: "\(name).yaml")
    }

    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-suite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// What the suite handed to its output, in order.
    private final class Printed {
        var finished: [String] = []
        var summaries: [[String]] = []
        var reportFolders: [URL] = []
        var output: SuiteOutput {
            SuiteOutput(
                scenarioFinished: { self.finished.append($0.scenario.name) },
                suiteFinished: { results, _ in self.summaries.append(results.map(\.scenario.name)) },
                reportsWritten: { self.reportFolders.append($0) })
        }
    }

    private func status(_ name: String, in folder: URL) throws -> String? {
        let data = try Data(contentsOf: folder.appendingPathComponent("\(name).json"))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["status"] as? String
    }

    func testFailFastStopsAtTheFirstFailureAndReportsTheRestAsNotRun() throws {
        try TestServers.reset()
        let reports = try temporaryFolder().appendingPathComponent("reports")
        let suite = SuiteRunner(
            configuration: TestServers.configuration,
            options: SuiteOptions(reportDirectory: reports.path, failFast: true, quiet: true))
        let printed = Printed()
        let outcome = try suite.run(
            [try scenario("suite-pass"), try scenario("suite-fail", throughput: "count == 5"), try scenario("suite-after")],
            output: printed.output)
        XCTAssertEqual(outcome.results.map(\.status), [.pass, .fail, .error])
        XCTAssertEqual(outcome.results[2].runError, "not run: --fail-fast: suite-fail failed")
        XCTAssertFalse(outcome.passed)
        XCTAssertNil(outcome.signal)
        XCTAssertEqual(printed.finished, ["suite-pass", "suite-fail"], "a run that did not happen is not printed as one")
        XCTAssertEqual(printed.summaries, [["suite-pass", "suite-fail", "suite-after"]])
        XCTAssertEqual(printed.reportFolders.map(\.path), [reports.path])
        XCTAssertEqual(try status("suite-pass", in: reports), "pass")
        XCTAssertEqual(try status("suite-fail", in: reports), "fail")
        XCTAssertEqual(try status("suite-after", in: reports), "error")
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("<testsuite name=\"suite-after\""), junit)
        XCTAssertTrue(FileManager.default.fileExists(atPath: reports.appendingPathComponent("report.html").path))
    }

    func testWithoutFailFastEveryRunRuns() throws {
        try TestServers.reset()
        let suite = SuiteRunner(configuration: TestServers.configuration, options: SuiteOptions(quiet: true))
        let printed = Printed()
        let outcome = try suite.run(
            [try scenario("suite-fail", throughput: "count == 5"), try scenario("suite-pass")], output: printed.output)
        XCTAssertEqual(outcome.results.map(\.status), [.fail, .pass])
        XCTAssertEqual(printed.finished, ["suite-fail", "suite-pass"])
        XCTAssertTrue(printed.reportFolders.isEmpty, "no report folder, no report files")
    }

    /// More virtual users than the server has connections for: refused before anything ran, and
    /// with a report folder every run is in it as an error that did not run.
    func testARefusalBeforeAnythingRanIsReportedInTheReportFolder() throws {
        let db = try TestServers.database()
        let available = try ConnectionBudget.available(db).available
        let reports = try temporaryFolder().appendingPathComponent("reports")
        let suite = SuiteRunner(
            configuration: TestServers.configuration, options: SuiteOptions(reportDirectory: reports.path, quiet: true))
        let printed = Printed()
        XCTAssertThrowsError(
            try suite.run([try scenario("suite-big", virtualUsers: min(available + 10, 1000))], output: printed.output)
        ) { error in
            XCTAssertTrue(error is SuiteRefused, "\(error)")
            XCTAssertTrue("\(error)".contains("suite-big.yaml: scenario suite-big needs"), "\(error)")
        }
        XCTAssertTrue(printed.finished.isEmpty && printed.summaries.isEmpty)
        XCTAssertEqual(try status("suite-big", in: reports), "error")
        let junit = try String(contentsOf: reports.appendingPathComponent("junit.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("refused before anything ran"), junit)
    }

    /// A report folder that is a file: bad input, refused before anything is written.
    func testAReportFolderThatIsAFileIsBadInput() throws {
        let file = try temporaryFolder().appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        let suite = SuiteRunner(configuration: TestServers.configuration, options: SuiteOptions(reportDirectory: file.path, quiet: true))
        XCTAssertThrowsError(try suite.run([try scenario("suite-pass")], output: Printed().output)) { error in
            XCTAssertTrue(error is SuiteBadInput, "\(error)")
            XCTAssertEqual("\(error)", "--report-dir \(file.path): exists and is not a folder")
        }
    }
}
