import Foundation
import LockProofCommerce
import LockProofScenario
import XCTest

/// The problems a text produces, as `line:column: message`.
func scenarioProblems(_ text: String) -> [String] {
    do {
        _ = try ScenarioParser.parse(text, file: "t.yaml")
        return []
    } catch let error as ScenarioValidationError {
        return error.problems.map { "\($0.line):\($0.column): \($0.message)" }
    } catch {
        return ["unexpected \(error)"]
    }
}

final class ScenarioParserTests: XCTestCase {
    private let valid = """
        name: sample
        case: charge-balance
        strategy: seed
        seed:
          users: 2
        workload:
          virtual_users: 4
          iterations: 3
        thresholds:
          lockproof_retry_exhausted_total: ["count == 0"]
          latency: ["p(95) < 200ms", "max <= 1s"]
        """

    private func problems(_ text: String) -> [String] { scenarioProblems(text) }

    private func assertProblem(_ text: String, at position: String, contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        let found = problems(text)
        XCTAssertTrue(
            found.contains { $0.hasPrefix(position + ":") && $0.contains(fragment) },
            "expected a problem at \(position) containing '\(fragment)', got \(found)", file: file, line: line)
    }

    func testValidScenarioParses() throws {
        let scenario = try ScenarioParser.parse(valid, file: "t.yaml")
        XCTAssertEqual(scenario.name, "sample")
        XCTAssertEqual(scenario.caseName, .chargeBalance)
        XCTAssertEqual(scenario.seed.users, 2)
        XCTAssertEqual(scenario.workload.virtualUsers, [4])
        XCTAssertEqual(scenario.workload.iterations, 3)
        XCTAssertEqual(scenario.thresholds.map(\.expression), ["count == 0", "p(95) < 200ms", "max <= 1s"])
        XCTAssertEqual(scenario.expect, .pass)
    }

    func testIdempotencyDuplicatesNeedKeys() throws {
        assertProblem(
            valid.replacingOccurrences(of: "  iterations: 3", with: "  iterations: 3\n  idempotency_duplicates: 4"), at: "9:27",
            contains: "without idempotency_keys: true")
        let keyed = try ScenarioParser.parse(
            valid.replacingOccurrences(
                of: "  iterations: 3", with: "  iterations: 3\n  idempotency_keys: true\n  idempotency_duplicates: 4"),
            file: "t.yaml")
        XCTAssertEqual(keyed.workload.idempotencyDuplicates, 4)
        XCTAssertTrue(keyed.workload.idempotencyKeys)
    }

    func testUnknownKeyIsReportedWithItsPositionAndASuggestion() {
        assertProblem(valid.replacingOccurrences(of: "  iterations: 3", with: "  iteratons: 3"), at: "8:3", contains: "did you mean 'iterations'")
        assertProblem(valid + "\nextra: 1", at: "12:1", contains: "unknown key 'extra'")
    }

    func testWrongTypesSayWhatWasFoundAndExpected() {
        assertProblem(valid.replacingOccurrences(of: "virtual_users: 4", with: "virtual_users: many"), at: "7:18",
                      contains: "found the string 'many'; expected a whole number")
        assertProblem(valid.replacingOccurrences(of: "users: 2", with: "users: 0"), at: "5:10", contains: "found 0; expected a whole number in 1")
        assertProblem(valid.replacingOccurrences(of: "seed:\n  users: 2", with: "seed: [1]"), at: "4:7", contains: "expected a mapping")
    }

    func testUnknownCaseAndStrategy() {
        assertProblem(valid.replacingOccurrences(of: "case: charge-balance", with: "case: charge"), at: "2:7",
                      contains: "expected one of charge-balance, process-payment")
        assertProblem(valid.replacingOccurrences(of: "strategy: seed", with: "strategy: unsorted"), at: "3:11",
                      contains: "case charge-balance has seed, optimistic-retry, pessimistic, atomic, naive")
    }

    func testThresholdOnAMisspelledMetricIsRejectedBeforeRunning() {
        assertProblem(valid.replacingOccurrences(of: "lockproof_retry_exhausted_total", with: "lockproof_retry_exhaust_total"),
                      at: "10:3", contains: "unknown metric 'lockproof_retry_exhaust_total' (did you mean 'lockproof_retry_exhausted_total'?)")
    }

    func testThresholdOnAMetricThatCannotHaveSamplesInThisCase() {
        assertProblem(valid + "\n  lockproof_compensations_total: [\"count == 0\"]", at: "12:3", contains: "cannot have samples in case charge-balance")
        assertProblem(
            valid.replacingOccurrences(of: "strategy: seed", with: "strategy: pessimistic") + "\n  lockproof_lock_wait_seconds{lock=\"redis\"}: [\"p(99) < 1s\"]",
            at: "12:3", contains: "strategy pessimistic of charge-balance takes only row locks")
        assertProblem(valid + "\n  lockproof_circuit_breaker_state: [\"value == 0\"]", at: "12:3", contains: "it is a state, not a measurement")
        assertProblem(valid + "\n  lockproof_lock_wait_seconds{lock=\"disk\"}: [\"p(99) < 1s\"]", at: "12:3", contains: "expected one of redis, row")
    }

    func testMalformedExpressions() {
        assertProblem(valid.replacingOccurrences(of: "\"p(95) < 200ms\"", with: "\"p(95) 200ms\""), at: "11:13", contains: "no comparison")
        assertProblem(valid.replacingOccurrences(of: "\"p(95) < 200ms\"", with: "\"p(101) < 200ms\""), at: "11:13", contains: "not an aggregation")
        assertProblem(valid.replacingOccurrences(of: "\"p(95) < 200ms\"", with: "\"p(95) < fast\""), at: "11:13", contains: "'fast' in 'p(95) < fast' is not a number")
        assertProblem(valid.replacingOccurrences(of: "[\"count == 0\"]", with: "[\"p(99) < 1s\"]"), at: "10:37", contains: "'p(99)' does not apply to a counter")
        assertProblem(valid.replacingOccurrences(of: "[\"count == 0\"]", with: "count == 0"), at: "10:36", contains: "expected a list of expressions")
    }

    /// `p(99) < 50` used to mean 50 seconds, silently: a duration takes its unit, a number none.
    func testDurationLimitsTakeUnits() throws {
        let units = try ScenarioParser.parse(
            valid.replacingOccurrences(of: "[\"p(95) < 200ms\", \"max <= 1s\"]", with: "[\"p(95) < 200ms\", \"p(99) < 250us\", \"avg < 1.5 s\", \"max <= 2m\", \"med < 3µs\", \"count > 0\"]"),
            file: "t.yaml")
        XCTAssertEqual(units.thresholds.map(\.limit), [0, 0.2, 0.00025, 1.5, 120, 0.000003, 0])
        assertProblem(
            valid.replacingOccurrences(of: "\"p(95) < 200ms\"", with: "\"p(95) < 0.2\""), at: "11:13",
            contains: "'p(95) < 0.2' gives a duration without a unit; write it with one (us, ms, s, m): 'p(95) < 200ms' is what it meant")
        assertProblem(
            valid.replacingOccurrences(of: "\"max <= 1s\"", with: "\"max <= 50\""), at: "11:30",
            contains: "'max <= 50s' is what it meant")
        assertProblem(
            valid.replacingOccurrences(of: "[\"count == 0\"]", with: "[\"count == 0ms\"]"), at: "10:37",
            contains: "count of a counter is a number, not a duration; drop the unit 'ms'")
        assertProblem(valid + "\n  lockproof_lock_wait_seconds{lock=\"redis\"}: [\"count > 5s\"]", at: "12:47", contains: "drop the unit 's'")
        assertProblem(valid.replacingOccurrences(of: "\"max <= 1s\"", with: "\"max <= 1 parsec\""), at: "11:30", contains: "not a number or a duration")
    }

    func testIterationsAndDurationExcludeEachOther() {
        assertProblem(valid.replacingOccurrences(of: "  iterations: 3", with: "  iterations: 3\n  duration: 5s"), at: "9:3", contains: "exclude each other")
        assertProblem(valid.replacingOccurrences(of: "  iterations: 3", with: "  duration: 5 parsecs"), at: "8:13", contains: "expected a positive duration")
    }

    /// A duration out of range names the bound it broke (a 10-year run was refused without the cap).
    func testADurationOutOfRangeNamesTheCap() {
        let tenYears = valid.replacingOccurrences(of: "  iterations: 3", with: "  duration: 5256000m")
        assertProblem(tenYears, at: "8:13", contains: "workload.duration: found 5256000m (315360000 s)")
        assertProblem(tenYears, at: "8:13", contains: "at most 86400 s")
        assertProblem(
            valid.replacingOccurrences(of: "  iterations: 3", with: "  iterations: 3\n  timeout: 0s"), at: "9:12",
            contains: "workload.timeout: found 0s (0 s); expected more than 0 and at most 86400 s")
        assertProblem(
            valid.replacingOccurrences(of: "  iterations: 3", with: "  iterations: 3\n  timeout: 86401"), at: "9:12",
            contains: "at most 86400 s")
        XCTAssertEqual(problems(valid.replacingOccurrences(of: "  iterations: 3", with: "  duration: 1440m")), [], "a day is allowed")
    }

    func testMissingRequiredKeysAndEmptyFile() {
        XCTAssertTrue(problems("case: charge-balance\nworkload: {virtual_users: 1, iterations: 1}").contains { $0.contains("missing key 'name'") })
        XCTAssertTrue(problems("").contains { $0.contains("an empty file") })
    }

    func testYAMLSyntaxErrorHasAPosition() {
        let found = problems("name: x\ncase: [charge-balance\nworkload: 1\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].contains("not valid YAML"), "\(found)")
    }

    func testEveryProblemIsReportedNotJustTheFirst() {
        let text = valid.replacingOccurrences(of: "users: 2", with: "users: -1").replacingOccurrences(of: "strategy: seed", with: "strategy: magic")
        XCTAssertEqual(problems(text).count, 2, "\(problems(text))")
    }

    func testCaseNeedsItsSeedData() {
        let payment = valid.replacingOccurrences(of: "case: charge-balance", with: "case: process-payment")
            .replacingOccurrences(of: "  lockproof_retry_exhausted_total: [\"count == 0\"]\n", with: "")
        XCTAssertTrue(problems(payment).contains { $0.contains("seed.orders") }, "\(problems(payment))")
    }

    func testSweepExpandsIntoOneRunPerClientCount() throws {
        let scenario = try ScenarioParser.parse(valid.replacingOccurrences(of: "virtual_users: 4", with: "virtual_users: [1, 16, 64]"), file: "t.yaml")
        XCTAssertEqual(scenario.runs.map(\.name), ["sample@vu1", "sample@vu16", "sample@vu64"])
        XCTAssertEqual(scenario.runs.map(\.workload.virtualUsers), [[1], [16], [64]])
    }

    func testEveryShippedScenarioIsValid() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scenarios").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThan(files.count, 20)
        var casesWithControls = Set<CaseName>()
        var casesWithSweeps = Set<CaseName>()
        for file in files {
            let scenario = try ScenarioParser.load(path: folder.appendingPathComponent(file).path)
            if scenario.expect == .violation { casesWithControls.insert(scenario.caseName) }
            if scenario.workload.virtualUsers == [1, 16, 64] { casesWithSweeps.insert(scenario.caseName) }
        }
        XCTAssertEqual(casesWithControls, Set(CaseName.allCases), "every case ships a negative control")
        XCTAssertEqual(casesWithSweeps, Set(CaseName.allCases), "every case ships a 1/16/64 sweep")
    }

    func testThresholdMetricsAreTheCatalogs() throws {
        let catalogFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Dashboards/metric-catalog.txt").standardized
        let catalog = Set(try String(contentsOf: catalogFile, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty })
        let usable = Set(ThresholdMetric.all.keys.filter { $0.hasPrefix("lockproof_") })
        XCTAssertTrue(usable.isSubset(of: catalog), "threshold metrics missing from the catalog: \(usable.subtracting(catalog))")
        XCTAssertEqual(usable.union(ThresholdMetric.unusable.keys), catalog, "every catalog family is usable or says why not")
    }
}
