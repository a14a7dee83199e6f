import Foundation
import LockProofScenario
import LockProofTestSupport
import XCTest

/// The controls of verify's own judging (`expect: unwitnessed-threshold`, `expect: fault-error`):
/// each passes when the judging refuses what it must, and fails, never errors, when it does not.
final class JudgingControlTests: XCTestCase {
    private func run(_ yaml: String) throws -> ScenarioResult {
        let scenario = try ScenarioParser.parse(yaml, file: "control.yaml")
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        return try runner.run(scenario)
    }

    private func unwitnessed(_ thresholds: String) -> String {
        """
        name: control-unwitnessed
        case: charge-balance
        strategy: pessimistic
        seed: {users: 2}
        workload: {start: barrier, virtual_users: 2, iterations: 3, think_ms: 1}
        expect: unwitnessed-threshold
        thresholds:
        \(thresholds)
        """
    }

    private func faultControl(start: String) -> String {
        """
        name: control-fault
        case: process-payment
        strategy: seed
        seed: {users: 2, balance: 10000000, products: 2, price: 100, stock: 100000, orders: 20, order_items: 1}
        workload: {start: barrier, virtual_users: 2, iterations: 3, pick: per-client, think_ms: 1}
        faults:
          - {kind: crash-after-deduct, start: \(start), duration: 30s, rate: 1}
        expect: fault-error
        """
    }

    private func verdictLine(_ result: ScenarioResult) -> String {
        ReportWriter.summary(result).split(separator: "\n").last.map(String.init) ?? ""
    }

    private func problems(_ yaml: String) -> [String] {
        do {
            _ = try ScenarioParser.parse(yaml, file: "control.yaml")
            return []
        } catch let error as ScenarioValidationError {
            return error.problems.map(\.message)
        } catch {
            return ["\(error)"]
        }
    }

    func testThresholdsOnPathsThatNeverRanFailAndTheControlPasses() throws {
        let result = try run(unwitnessed("  lockproof_retry_exhausted_total: [\"count == 0\"]\n  circuit_breaker_openings: [\"count == 0\"]"))
        XCTAssertNil(result.runError)
        XCTAssertEqual(result.thresholds.count, 2)
        XCTAssertTrue(result.thresholds.allSatisfy { !$0.passed && $0.observed == nil }, "\(result.thresholds)")
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        XCTAssertEqual(result.status, .pass)
        let summary = ReportWriter.summary(result)
        XCTAssertTrue(summary.contains("FAILED (as this control expects)"), summary)
        XCTAssertTrue(summary.contains("verdict: PASS (judging control: every threshold watched a path that never ran"), summary)
        // JUnit: the thresholds' messages are output, the control one passing test case.
        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("failures=\"0\" errors=\"0\""), junit)
        XCTAssertTrue(junit.contains("name=\"judging control (expect unwitnessed-threshold)\""), junit)
    }

    /// A threshold judged on a value (here, one the run did produce) is the judging passing
    /// something it could test: the control fails and names it.
    func testAThresholdJudgedOnAValueFailsTheControl() throws {
        let result = try run(unwitnessed("  lockproof_retry_exhausted_total: [\"count == 0\"]\n  throughput: [\"count == 6\"]"))
        XCTAssertNil(result.runError)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.status, .fail)
        XCTAssertEqual(result.unwitnessedThresholdsPassing.map(\.metric), ["throughput"])
        let verdict = verdictLine(result)
        XCTAssertTrue(verdict.hasPrefix("verdict: FAIL (judging control: judged on a value no path produced: throughput count == 6"), verdict)
        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("failures=\"1\" errors=\"0\""), junit)
    }

    func testAFaultThatNeverStruckIsTheExpectedErrorAndTheControlPasses() throws {
        let result = try run(faultControl(start: "30s"))
        XCTAssertTrue(result.runError?.contains("never struck") == true, result.runError ?? "nil")
        XCTAssertEqual(result.faultError, result.runError)
        XCTAssertTrue(result.errorExpected)
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        XCTAssertEqual(result.status, .pass)
        // Every output reads it as expected: no error in the report or JUnit, the message kept.
        let report = ScenarioReport(result)
        XCTAssertNil(report.error)
        XCTAssertEqual(report.expectedError, result.runError)
        XCTAssertEqual(report.status, "pass")
        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("failures=\"0\" errors=\"0\""), junit)
        XCTAssertFalse(junit.contains("<error"), junit)
        XCTAssertTrue(junit.contains("never struck"), "the expected error is kept as output")
        XCTAssertTrue(ReportWriter.summary(result).contains("error (expected by this control): fault crash-after-deduct"))
    }

    /// The fault struck: the control tested nothing, and says so as a failure (not a pass, not an error).
    func testAFaultThatStruckFailsTheControl() throws {
        let result = try run(faultControl(start: "0s"))
        XCTAssertNil(result.runError)
        XCTAssertNil(result.faultError)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.status, .fail)
        XCTAssertEqual(verdictLine(result), "verdict: FAIL (judging control: the fault struck, so this control tested nothing)")
    }

    /// A run error other than the fault's stays an error: a control never turns a broken run into a pass.
    func testAnErrorOtherThanTheFaultsIsStillAnError() {
        var result = ScenarioResult.error(try! ScenarioParser.parse(faultControl(start: "30s"), file: "control.yaml"), "PostgreSQL unreachable")
        result.faultError = "fault crash-after-deduct at 30.00 s: never struck"
        XCTAssertFalse(result.errorExpected)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(ScenarioReport(result).error, "PostgreSQL unreachable")
    }

    /// The database claim lost during a control's run (here: released before it) is the run's
    /// error, not hidden behind the fault's expected one.
    func testALostClaimIsStillAnErrorOfAFaultControl() throws {
        let claim = try ScenarioRunner.claimDatabase(TestServers.configuration, command: "test")
        claim.release()
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.claim = claim
        let result = try runner.run(try ScenarioParser.parse(faultControl(start: "30s"), file: "control.yaml"))
        XCTAssertTrue(result.runError?.contains("hold on the database was lost") == true, result.runError ?? "nil")
        XCTAssertFalse(result.errorExpected)
        XCTAssertEqual(result.status, .error)
    }

    func testAControlWithoutWhatItControlsIsRefused() {
        let noThresholds = unwitnessed("").replacingOccurrences(of: "thresholds:\n", with: "")
        XCTAssertEqual(
            problems(noThresholds), ["expect: unwitnessed-threshold needs thresholds (each on a path the run never takes); found none"])
        let noFaults = faultControl(start: "30s").components(separatedBy: "faults:")[0] + "expect: fault-error\n"
        XCTAssertEqual(problems(noFaults), ["expect: fault-error needs faults (one that cannot strike); found none"])
        XCTAssertEqual(
            problems(unwitnessed("  throughput: [\"count > 0\"]").replacingOccurrences(of: "unwitnessed-threshold", with: "vacuous")),
            ["expect: found 'vacuous'; expected one of pass, violation, unwitnessed-threshold, fault-error"])
    }
}
