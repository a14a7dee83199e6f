import Foundation
import LockProofCommerce

/// The JSON report of one scenario (`--report-dir`), stable keys for CI.
public struct ScenarioReport: Codable, Sendable {
    public struct Operations: Codable, Sendable {
        public let ok: Int
        public let fail: Int
        public let unknown: Int
        /// fail split by reason, e.g. {"sold_out": 100}.
        public let failReasons: [String: Int]

        enum CodingKeys: String, CodingKey {
            case ok, fail, unknown
            case failReasons = "fail_reasons"
        }
    }
    public struct Latency: Codable, Sendable {
        public let p50: Double?
        public let p95: Double?
        public let p99: Double?
        public let max: Double?
    }
    public struct LockWait: Codable, Sendable {
        public let lock: String
        public let count: Int
        public let p50: Double
        public let p99: Double
        public let max: Double
    }
    /// Waits to borrow a pooled connection (`workload.connections`), by pool.
    public struct PoolWait: Codable, Sendable {
        public let pool: String
        /// Every borrow, waited or not.
        public let borrows: Int
        public let p50: Double
        public let p99: Double
        public let max: Double
        /// Borrows made while holding a Redis lock, and the seconds they added to its holds.
        public let whileHoldingLock: Int
        public let whileHoldingLockSeconds: Double

        enum CodingKeys: String, CodingKey {
            case pool, borrows, p50, p99, max
            case whileHoldingLock = "while_holding_lock"
            case whileHoldingLockSeconds = "while_holding_lock_seconds"
        }
    }
    public struct Counters: Codable, Sendable {
        public let retryAttempts: Int
        public let retryExhausted: Int
        public let optimisticConflicts: Int
        public let deadlocks: Int
        public let serializationFailures: Int
        public let uniqueViolations: Int
        public let compensationsSucceeded: Int
        public let compensationsFailed: Int
        public let lockAcquireFailures: Int
        public let distributedLocksLost: Int

        enum CodingKeys: String, CodingKey {
            case retryAttempts = "retry_attempts"
            case retryExhausted = "retry_exhausted"
            case optimisticConflicts = "optimistic_conflicts"
            case deadlocks
            case serializationFailures = "serialization_failures"
            case uniqueViolations = "unique_violations"
            case compensationsSucceeded = "compensations_succeeded"
            case compensationsFailed = "compensations_failed"
            case lockAcquireFailures = "lock_acquire_failures"
            case distributedLocksLost = "distributed_locks_lost"
        }
    }

    /// The version of this report's layout (docs/schemas/scenario-report.schema.json): raised
    /// whenever a field is renamed, removed or changes meaning.
    public static let currentSchemaVersion = 2

    public let schemaVersion: Int
    public let tool: String
    public let toolVersion: String
    /// ISO 8601, UTC.
    public let startedAt: String
    public let endedAt: String
    public let machine: MachineInfo
    /// The history's file name beside this report, when the run kept one.
    public let historyFile: String?
    public let scenario: String
    public let file: String
    public let description: String
    public let `case`: String
    public let strategy: String
    public let expect: String
    /// `pass`, `fail`, or `error` (the run broke: aborted, hung, interrupted; see `error`).
    public let status: String
    public let passed: Bool
    public let violationCaught: Bool
    public let virtualUsers: Int
    public let durationSeconds: Double
    public let checks: [CheckResult]
    public let thresholds: [ThresholdResult]
    public let operations: Operations
    public let latencySeconds: Latency
    public let throughputPerSecond: Double
    public let lockWaitSeconds: [LockWait]
    /// How long locks were held, by lock kind (same shape as the waits).
    public let lockHeldSeconds: [LockWait]
    public let poolWaitSeconds: [PoolWait]
    public let counters: Counters
    /// Every fault as it really happened: kind, start, end, targets.
    public let faults: [FaultRecord]
    /// Redis locks held by two clients at once.
    public let lockOverlaps: LockOverlapSummary?
    /// The end-of-run payment recovery (payment scenarios).
    public let recovery: RecoveryReport?
    public let circuitBreaker: CircuitBreakerSummary?
    /// Writes the database refused for a stale fencing token.
    public let fencedWritesRefused: Int
    public let error: String?
    public let interrupted: Bool
    /// No operation was performed: the scenario fails whatever its thresholds.
    public let nothingTested: Bool

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case tool
        case toolVersion = "tool_version"
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case machine
        case historyFile = "history_file"
        case scenario, file, description, `case`, strategy, expect, status, passed
        case violationCaught = "violation_caught"
        case virtualUsers = "virtual_users"
        case durationSeconds = "duration_seconds"
        case checks, thresholds, operations
        case latencySeconds = "latency_seconds"
        case throughputPerSecond = "throughput_per_second"
        case lockWaitSeconds = "lock_wait_seconds"
        case lockHeldSeconds = "lock_held_seconds"
        case poolWaitSeconds = "pool_wait_seconds"
        case counters, faults
        case lockOverlaps = "lock_overlaps"
        case recovery
        case circuitBreaker = "circuit_breaker"
        case fencedWritesRefused = "fenced_writes_refused"
        case error, interrupted
        case nothingTested = "nothing_tested"
    }

    public init(_ result: ScenarioResult) {
        schemaVersion = Self.currentSchemaVersion
        tool = "lockproof"
        toolVersion = LockProofRelease.version
        startedAt = Self.timestamp(result.startedAt)
        endedAt = Self.timestamp(result.endedAt)
        machine = result.machine
        historyFile = result.historyFile?.lastPathComponent
        let s = result.statistics
        let latency = s.trend("latency")
        scenario = result.scenario.name
        file = result.scenario.file
        description = result.scenario.description
        `case` = result.scenario.caseLabel
        strategy = result.scenario.strategyLabel
        expect = result.scenario.expect.rawValue
        status = result.status.rawValue
        passed = result.passed
        violationCaught = result.violationCaught
        virtualUsers = result.scenario.workload.virtualUsers[0]
        durationSeconds = result.seconds
        checks = result.checks
        thresholds = result.thresholds
        let tally = result.operations
        operations = Operations(ok: tally.ok, fail: tally.fail, unknown: tally.unknown, failReasons: tally.reasons)
        latencySeconds = Latency(p50: latency?.percentile(50), p95: latency?.percentile(95), p99: latency?.percentile(99), max: latency?.maximum)
        throughputPerSecond = result.throughput
        lockWaitSeconds = ["redis", "row"].compactMap { lock in
            s.trend("lockproof_lock_wait_seconds", where: ["lock": lock]).map {
                LockWait(lock: lock, count: $0.count, p50: $0.percentile(50), p99: $0.percentile(99), max: $0.maximum)
            }
        }
        lockHeldSeconds = ["redis", "row"].compactMap { lock in
            s.trend("lockproof_lock_held_seconds", where: ["lock": lock]).map {
                LockWait(lock: lock, count: $0.count, p50: $0.percentile(50), p99: $0.percentile(99), max: $0.maximum)
            }
        }
        poolWaitSeconds = ["postgres", "redis"].compactMap { pool in
            s.trend("lockproof_pool_wait_seconds", where: ["pool": pool]).map {
                let holding = s.trend(RunStatistics.poolWaitHoldingLock, where: ["pool": pool])
                return PoolWait(
                    pool: pool, borrows: $0.count, p50: $0.percentile(50), p99: $0.percentile(99), max: $0.maximum,
                    whileHoldingLock: holding?.count ?? 0, whileHoldingLockSeconds: holding.map { $0.average * Double($0.count) } ?? 0)
            }
        }
        counters = Counters(
            retryAttempts: s.count("lockproof_retry_attempts_total"),
            retryExhausted: s.count("lockproof_retry_exhausted_total"),
            optimisticConflicts: s.count("lockproof_optimistic_conflicts_total"),
            deadlocks: s.count("lockproof_db_deadlocks_total"),
            serializationFailures: s.count("lockproof_db_serialization_failures_total"),
            uniqueViolations: s.count("lockproof_db_unique_violations_total"),
            compensationsSucceeded: s.count("lockproof_compensations_total", where: ["outcome": "succeeded"]),
            compensationsFailed: s.count("lockproof_compensations_total", where: ["outcome": "failed"]),
            lockAcquireFailures: s.count("lockproof_lock_acquire_failures_total"),
            distributedLocksLost: s.count("lockproof_distributed_lock_lost_total"))
        faults = result.faults
        lockOverlaps = result.lockOverlaps
        recovery = result.recovery
        circuitBreaker = result.circuitBreaker
        fencedWritesRefused = s.count(RunStatistics.fencedWritesRefused)
        error = result.runError
        interrupted = result.interrupted
        nothingTested = result.nothingTested
    }
}

extension ScenarioReport {
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Colour on a terminal: green ✓ PASS, red ✗ FAIL. Plain (the default, and every report file)
/// changes nothing.
public struct TerminalStyle: Sendable {
    public let colour: Bool
    public init(colour: Bool) { self.colour = colour }
    public static let plain = TerminalStyle(colour: false)

    /// Colour when stdout is a terminal or CLICOLOR_FORCE is set (not "0"), unless --no-color or
    /// NO_COLOR (any non-empty value, https://no-color.org) says otherwise.
    public static func decide(noColorFlag: Bool, environment: [String: String], stdoutIsTerminal: Bool) -> TerminalStyle {
        if noColorFlag || !(environment["NO_COLOR"] ?? "").isEmpty { return .plain }
        let forced = environment["CLICOLOR_FORCE"].map { !$0.isEmpty && $0 != "0" } ?? false
        return TerminalStyle(colour: stdoutIsTerminal || forced)
    }

    public func good(_ text: String) -> String { colour ? "\u{1B}[32m" + text + "\u{1B}[0m" : text }
    public func bad(_ text: String) -> String { colour ? "\u{1B}[1;31m" + text + "\u{1B}[0m" : text }
    public func warning(_ text: String) -> String { colour ? "\u{1B}[33m" + text + "\u{1B}[0m" : text }
    /// `✓ ok` / `✗ FAILED` in colour; the word alone when plain.
    public func mark(_ passed: Bool, _ word: String) -> String {
        colour ? (passed ? good("✓ " + word) : bad("✗ " + word)) : word
    }
}

/// What `run --json` and `verify --json` print on stdout: every scenario's report (as NAME.json)
/// and the totals.
public struct RunSummaryDocument: Encodable {
    public let scenarios: [ScenarioReport]
    public let passed: Int
    public let failed: Int
    public let errors: Int
    public let reportDir: String?

    enum CodingKeys: String, CodingKey {
        case scenarios, passed, failed, errors
        case reportDir = "report_dir"
    }

    public init(_ results: [ScenarioResult], reportDir: String?) {
        scenarios = results.map(ScenarioReport.init)
        passed = results.filter { $0.status == .pass }.count
        failed = results.filter { $0.status == .fail }.count
        errors = results.filter { $0.status == .error }.count
        self.reportDir = reportDir
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

public enum ReportWriter {
    /// pgbench-like: what ran, operations by outcome, throughput, latency percentiles, locks,
    /// retries, conflicts; then every check and threshold, then the verdict.
    public static func summary(_ result: ScenarioResult, style: TerminalStyle = .plain) -> String {
        let report = ScenarioReport(result)
        let workload = result.scenario.workload
        var lines: [String] = []
        lines.append("scenario: \(report.scenario) (\(report.file))")
        lines.append("case: \(report.case), strategy: \(report.strategy), expect: \(report.expect)")
        let bound = workload.iterations.map { "\($0) iterations each" } ?? "\(formatNumber(workload.durationSeconds ?? 0)) s"
        lines.append("virtual users: \(report.virtualUsers), \(bound), started at a barrier")
        lines.append("duration: \(String(format: "%.3f", report.durationSeconds)) s")
        let reasons = report.operations.failReasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append(
            "operations: \(report.operations.ok) ok, \(report.operations.fail) fail, \(report.operations.unknown) unknown\(reasons.isEmpty ? "" : " (\(reasons))")")
        lines.append("throughput: \(String(format: "%.1f", report.throughputPerSecond)) ops/s")
        let l = report.latencySeconds
        lines.append("latency: p50 \(ms(l.p50)), p95 \(ms(l.p95)), p99 \(ms(l.p99)), max \(ms(l.max))")
        for wait in report.lockWaitSeconds {
            lines.append("lock wait (\(wait.lock)): \(wait.count) waits, p50 \(ms(wait.p50)), p99 \(ms(wait.p99)), max \(ms(wait.max))")
        }
        for held in report.lockHeldSeconds {
            lines.append("lock held (\(held.lock)): \(held.count) holds, p50 \(ms(held.p50)), p99 \(ms(held.p99)), max \(ms(held.max))")
        }
        for wait in report.poolWaitSeconds {
            lines.append(
                "pool wait (\(wait.pool)): \(wait.borrows) borrows, p50 \(ms(wait.p50)), p99 \(ms(wait.p99)), max \(ms(wait.max)); "
                    + "\(wait.whileHoldingLock) while holding a Redis lock, adding \(String(format: "%.3f", wait.whileHoldingLockSeconds)) s to its holds")
        }
        let c = report.counters
        lines.append(
            "retries: \(c.retryAttempts) attempts, \(c.retryExhausted) exhausted; optimistic conflicts: \(c.optimisticConflicts)")
        lines.append(
            "deadlocks: \(c.deadlocks); serialization failures: \(c.serializationFailures); unique violations: \(c.uniqueViolations)")
        if c.compensationsSucceeded + c.compensationsFailed > 0 {
            lines.append("compensations: \(c.compensationsSucceeded) succeeded, \(c.compensationsFailed) failed")
        }
        if c.lockAcquireFailures + c.distributedLocksLost > 0 {
            lines.append("lock acquire failures: \(c.lockAcquireFailures); distributed locks lost: \(c.distributedLocksLost)")
        }
        if report.fencedWritesRefused > 0 {
            lines.append("fenced writes refused (stale fencing token): \(report.fencedWritesRefused)")
        }
        if let breaker = report.circuitBreaker, breaker.openings > 0 || breaker.bypassed > 0 {
            lines.append(
                "redis circuit breaker: opened \(breaker.openings)×, open \(String(format: "%.2f", breaker.openSeconds)) s, \(breaker.bypassed) lock calls on database locks alone")
        }
        if let overlaps = report.lockOverlaps, overlaps.overlaps > 0 {
            lines.append(
                "two holders of one Redis lock: \(overlaps.overlaps)× (at most \(overlaps.maxHolders) at once; first \(overlaps.firstKey ?? "?"))")
        }
        if !report.faults.isEmpty {
            lines.append(contentsOf: faultTimeline(report.faults, runSeconds: report.durationSeconds))
        }
        if let r = report.recovery {
            lines.append(
                "recovery: \(r.interrupted) interrupted payments (\(r.markedPaid) marked PAID, \(r.compensated) compensated, \(r.stillOpen) still open); compensations pending \(r.compensationsPendingBefore) before, \(r.compensationsPendingAfter) after")
        }
        for check in report.checks {
            lines.append("check \(check.name): \(style.mark(check.passed, check.passed ? "ok" : "VIOLATED")) (\(check.summary))")
            for violation in check.violations {
                lines.append("  \(violation.name) ×\(violation.count), first: \(violation.firstExample)")
            }
        }
        for threshold in report.thresholds {
            lines.append(
                "threshold \(threshold.metric) '\(threshold.expression)': \(style.mark(threshold.passed, threshold.passed ? "ok" : "FAILED")) — \(threshold.message)")
            if let warning = threshold.warning { lines.append("  " + style.warning("warning: \(warning)")) }
        }
        if let error = report.error { lines.append("error: \(error)") }
        let verdictText = verdict(result)
        lines.append("verdict: \(style.mark(result.status == .pass, verdictText))")
        return lines.joined(separator: "\n")
    }

    /// The faults on the run's time line: one bar per fault over the run's length.
    static func faultTimeline(_ faults: [FaultRecord], runSeconds: Double) -> [String] {
        let width = 40
        let span = max(runSeconds, faults.compactMap(\.end).max() ?? 0, 0.001)
        var lines = ["faults (time line 0 … \(String(format: "%.1f", span)) s):"]
        let nameWidth = faults.map(\.kind.count).max() ?? 0
        for fault in faults {
            let from = min(width - 1, Int(fault.start / span * Double(width)))
            let to = max(from + 1, min(width, Int(((fault.end ?? fault.start) / span * Double(width)).rounded(.up))))
            let bar = String(repeating: "·", count: from) + String(repeating: "█", count: to - from)
                + String(repeating: "·", count: width - to)
            let when = fault.end.map { String(format: "%.2f–%.2f s", fault.start, $0) } ?? String(format: "%.2f s", fault.start)
            var line = "  \(fault.kind.padding(toLength: nameWidth, withPad: " ", startingAt: 0)) |\(bar)| \(when)"
            if !fault.targets.isEmpty { line += ": " + fault.targets.joined(separator: "; ") }
            if let hits = fault.hits { line += " [\(hits) struck]" }
            lines.append(line)
            if let note = fault.note { lines.append("    \(note)") }
            if let error = fault.error { lines.append("    ERROR: \(error)") }
        }
        return lines
    }

    static func verdict(_ result: ScenarioResult) -> String {
        if let error = result.runError { return "ERROR (\(error))" }
        if result.nothingTested { return "FAIL (\(nothingTestedMessage))" }
        switch (result.scenario.expect, result.passed) {
        case (.pass, true): return "PASS"
        case (.pass, false):
            let failed = result.checks.filter { !$0.passed }.map(\.name) + result.thresholds.filter { !$0.passed }.map { "\($0.metric) \($0.expression)" }
            return "FAIL (\(failed.joined(separator: "; ")))"
        case (.violation, true):
            return "PASS (violation caught as expected: \(result.checks.filter { !$0.passed }.map(\.name).joined(separator: ", ")))"
        case (.violation, false): return "FAIL (negative control: no check caught a violation)"
        }
    }

    /// One row per scenario.
    public static func verdictTable(_ results: [ScenarioResult], style: TerminalStyle = .plain) -> String {
        let rows = results.map { result -> [String] in
            let report = ScenarioReport(result)
            return [
                report.scenario, report.case, report.strategy, report.expect, String(report.virtualUsers),
                "\(report.operations.ok)/\(report.operations.fail)/\(report.operations.unknown)",
                String(format: "%.0f", report.throughputPerSecond), ms(report.latencySeconds.p99),
                result.status.rawValue.uppercased(),
            ]
        }
        let header = ["scenario", "case", "strategy", "expect", "vu", "ok/fail/unk", "ops/s", "p99", "verdict"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        func line(_ cells: [String], coloured: Bool = false) -> String {
            // The last column unpadded: no trailing blanks; coloured after padding.
            cells.enumerated().map {
                guard $0.offset == cells.count - 1 else { return $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                return coloured ? style.mark($0.element == "PASS", $0.element) : $0.element
            }.joined(separator: "  ")
        }
        let passed = results.filter { $0.status == .pass }.count
        let failed = results.filter { $0.status == .fail }.count
        let errors = results.filter { $0.status == .error }.count
        var footer = "\(passed) passed, \(failed) failed, \(errors) \(errors == 1 ? "error" : "errors")"
        if let interrupted = results.first(where: \.interrupted) { footer += "; \(interrupted.runError ?? "interrupted")" }
        var lines = [line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map { line($0, coloured: true) } + [footer]
        // An error's reason under the table too: a reader of the table alone must not miss it.
        for result in results where result.status == .error { lines.append("error: \(result.scenario.name): \(result.runError!)") }
        return lines.joined(separator: "\n")
    }

    static let nothingTestedMessage = "nothing was tested: the run performed no operation"

    /// Writes NAME.json into `directory` (the runner streamed NAME.history.jsonl there during the run).
    public static func write(_ result: ScenarioResult, to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let base = fileBase(result.scenario.name)
        try ReportFile.write(encoder.encode(ScenarioReport(result)), named: "\(base).json", in: directory)
    }

    /// The stem of a run's report files. Scenario names cannot contain '@', so a sweep's
    /// `x@vu4` keeps its '@' and never meets a scenario named `x-vu4`.
    public static func fileBase(_ name: String) -> String { name }

    /// The longest file name most file systems accept, in bytes.
    static let longestFileName = 255

    /// Problems with the report files of these runs (run name → scenario file): two runs writing
    /// the same file (also when only letter case differs), or a name too long for a file. Checked
    /// before anything runs.
    public static func reportFileProblems(_ runs: [(name: String, file: String)]) -> [String] {
        var problems: [String] = []
        var seen: [String: (name: String, file: String)] = [:]
        for run in runs {
            let base = fileBase(run.name)
            let longest = "\(base).history.jsonl"
            if longest.utf8.count > longestFileName {
                problems.append(
                    "\(run.file):1:1: error: name '\(run.name)' makes the report file name \(longest.utf8.count) bytes long; at most \(longestFileName) fit (shorten the name)")
            }
            if let other = seen[base.lowercased()] {
                problems.append(
                    "\(run.file):1:1: error: run '\(run.name)' and run '\(other.name)' of \(other.file) would write the same report files (\(base).json); rename one")
            } else {
                seen[base.lowercased()] = run
            }
            if base.lowercased() == "junit" {
                problems.append("\(run.file):1:1: error: name '\(run.name)' is reserved for junit.xml; rename it")
            }
        }
        return problems
    }

    /// JUnit XML: one test suite per scenario, one test case per check and threshold. Counts mean
    /// the same at both levels: `<testsuites tests failures errors>` are the sums of its suites'.
    /// A check's violations are in its test case (as the failure for a scenario that expects none,
    /// as system-out for a negative control that caught them); the run's key figures are
    /// properties of its suite.
    public static func junit(_ results: [ScenarioResult]) -> String {
        var suites: [String] = []
        var totals = (tests: 0, failures: 0, errors: 0, seconds: 0.0)
        for result in results {
            let report = ScenarioReport(result)
            var cases: [(name: String, failure: String?, output: String?)] = []
            let expectViolation = result.scenario.expect == .violation
            for check in report.checks {
                let text = check.violations.map { "\($0.name) ×\($0.count): \($0.firstExample)" }.joined(separator: "\n")
                // For a negative control, a violated check is the expected outcome: its text is output.
                let failed = !expectViolation && !check.passed
                cases.append(("check \(check.name)", failed ? text : nil, !failed && !text.isEmpty ? text : nil))
            }
            if expectViolation && report.error == nil {
                cases.append(("negative control caught", result.violationCaught ? nil : "no check caught a violation", nil))
            }
            for threshold in report.thresholds where !expectViolation {
                cases.append(("threshold \(threshold.metric) \(threshold.expression)", threshold.passed ? nil : threshold.message, nil))
            }
            if report.error == nil {
                cases.append(("operations performed", result.nothingTested ? nothingTestedMessage : nil, nil))
            }
            let failed = cases.filter { $0.failure != nil }.count
            // A broken run is an <error>, which JUnit readers count apart from failures.
            let runError = report.error
            let tests = cases.count + (runError == nil ? 0 : 1)
            let errors = runError == nil ? 0 : 1
            totals.tests += tests
            totals.failures += failed
            totals.errors += errors
            totals.seconds += report.durationSeconds
            var xml = [
                "  <testsuite name=\"\(escape(report.scenario))\" tests=\"\(tests)\" failures=\"\(failed)\" errors=\"\(errors)\" time=\"\(String(format: "%.3f", report.durationSeconds))\" timestamp=\"\(report.startedAt)\">"
            ]
            xml.append("    <properties>")
            for (name, value) in junitProperties(report) {
                xml.append("      <property name=\"\(escape(name))\" value=\"\(escape(value))\"/>")
            }
            xml.append("    </properties>")
            if let runError {
                xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"run\">")
                xml.append("      <error message=\"\(escape(String(runError.prefix(200))))\">\(escape(runError))</error>")
                xml.append("    </testcase>")
            }
            for (name, failure, output) in cases {
                guard failure != nil || output != nil else {
                    xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"\(escape(name))\"/>")
                    continue
                }
                xml.append("    <testcase classname=\"\(escape(report.scenario))\" name=\"\(escape(name))\">")
                if let failure {
                    xml.append("      <failure message=\"\(escape(String(failure.prefix(200))))\">\(escape(failure))</failure>")
                }
                if let output { xml.append("      <system-out>\(escape(output))</system-out>") }
                xml.append("    </testcase>")
            }
            xml.append("  </testsuite>")
            suites.append(xml.joined(separator: "\n"))
        }
        let header = "<testsuites name=\"lockproof\" tests=\"\(totals.tests)\" failures=\"\(totals.failures)\" errors=\"\(totals.errors)\" time=\"\(String(format: "%.3f", totals.seconds))\">"
        return (["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", header] + suites + ["</testsuites>"]).joined(separator: "\n") + "\n"
    }

    /// A scenario's key figures, as JUnit properties (names as in NAME.json).
    static func junitProperties(_ report: ScenarioReport) -> [(String, String)] {
        var properties: [(String, String)] = [
            ("status", report.status), ("expect", report.expect), ("case", report.case), ("strategy", report.strategy),
            ("virtual_users", String(report.virtualUsers)), ("violation_caught", String(report.violationCaught)),
            ("operations_ok", String(report.operations.ok)), ("operations_fail", String(report.operations.fail)),
            ("operations_unknown", String(report.operations.unknown)),
            ("throughput_per_second", String(format: "%.3f", report.throughputPerSecond)),
        ]
        let latency = report.latencySeconds
        for (name, value) in [("latency_p50_seconds", latency.p50), ("latency_p99_seconds", latency.p99)] {
            if let value { properties.append((name, String(format: "%.6f", value))) }
        }
        properties.append(("tool_version", report.toolVersion))
        return properties
    }

    /// Escapes text for HTML and XML (report.html, junit.xml, bench.html).
    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func ms(_ seconds: Double?) -> String {
        guard let seconds else { return "n/a" }
        return String(format: seconds < 0.01 ? "%.2f ms" : "%.1f ms", seconds * 1000)
    }
}
