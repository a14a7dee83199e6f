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
    /// The run broke: aborted, hung, interrupted, a fault that failed (unless expected, below).
    public let error: String?
    /// The error a `fault-error` control expected and got (then `error` is absent and the status pass).
    public let expectedError: String?
    public let interrupted: Bool
    /// No operation was performed: the scenario fails whatever its thresholds.
    public let nothingTested: Bool
    /// The target the run went through (issue 18); absent for in-process runs.
    public let target: String?

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
        case error
        case expectedError = "expected_error"
        case interrupted
        case nothingTested = "nothing_tested"
        case target
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
        target = result.target
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
        error = result.errorExpected ? nil : result.runError
        expectedError = result.errorExpected ? result.runError : nil
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

/// A run's report files: NAME.json here, the text summary in ReportSummary.swift, junit.xml in
/// ReportJUnit.swift, report.html in RunReportHTML.swift.
public enum ReportWriter {
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
}
