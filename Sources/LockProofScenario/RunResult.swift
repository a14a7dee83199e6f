import Foundation
import LockProofCommerce
import LockProofLocking
import Synchronization

/// What one scenario run produced.
public struct ScenarioResult: Sendable {
    public let scenario: Scenario
    /// Operations by outcome and reason (the history itself is in `NAME.history.jsonl`).
    public let operations: OperationTally
    public let checks: [CheckResult]
    public let thresholds: [ThresholdResult]
    public let statistics: RunStatistics
    public let seconds: Double
    /// Set when the run itself broke (a client could not connect, a hang, a lost server, an
    /// interruption): the scenario is an error, whatever its checks said.
    public internal(set) var runError: String?
    /// What the end-of-run payment recovery did (payment scenarios only).
    public var recovery: RecoveryReport? = nil
    /// The Redis circuit breaker during the run.
    public var circuitBreaker: CircuitBreakerSummary? = nil
    /// The faults as they really happened (kind, start, end, targets).
    public var faults: [FaultRecord] = []
    /// The first fault that failed (to inject, heal or strike), as the run's error names it.
    public var faultError: String? = nil
    /// Redis locks that had two holders at once in this process (lease lost, failover).
    public var lockOverlaps: LockOverlapSummary? = nil
    /// Stopped by a signal before it finished.
    public let interrupted: Bool
    /// Its clients were still running when the runner gave up on them (a hang, an interruption):
    /// nothing else can run in this process without being disturbed by them.
    public let clientsAbandoned: Bool
    /// Where the history was written, if anywhere.
    public let historyFile: URL?
    /// When the run began and ended (wall clock), and what it ran on: set by `Runner.run`; a
    /// result made without running (a refusal) has the time it was made.
    public var startedAt = Date()
    public var endedAt = Date()
    public var machine = MachineInfo.local()
    /// The target the run went through (`--target`, issue 18); nil: LockProof's own in-process strategies.
    public var target: String? = nil

    public init(
        scenario: Scenario, operations: OperationTally, checks: [CheckResult], thresholds: [ThresholdResult],
        statistics: RunStatistics, seconds: Double, runError: String?, interrupted: Bool = false,
        clientsAbandoned: Bool = false, historyFile: URL? = nil, recovery: RecoveryReport? = nil,
        circuitBreaker: CircuitBreakerSummary? = nil, faults: [FaultRecord] = [], lockOverlaps: LockOverlapSummary? = nil
    ) {
        self.scenario = scenario
        self.operations = operations
        self.checks = checks
        self.thresholds = thresholds
        self.statistics = statistics
        self.seconds = seconds
        self.runError = runError
        self.interrupted = interrupted
        self.clientsAbandoned = clientsAbandoned
        self.historyFile = historyFile
        self.recovery = recovery
        self.circuitBreaker = circuitBreaker
        self.faults = faults
        self.lockOverlaps = lockOverlaps
    }

    /// A scenario that could not be run or judged at all.
    public static func error(_ scenario: Scenario, _ message: String, interrupted: Bool = false, seconds: Double = 0) -> ScenarioResult {
        ScenarioResult(
            scenario: scenario, operations: OperationTally(), checks: [], thresholds: [], statistics: RunStatistics(),
            seconds: seconds, runError: message, interrupted: interrupted)
    }

    /// Did any check catch a violation?
    public var violationCaught: Bool { checks.contains { !$0.passed } }

    /// No operation was performed: nothing was tested, so nothing can pass.
    public var nothingTested: Bool { operations.total == 0 }

    /// The run's error is the one a `fault-error` control expects: its fault's, and nothing else.
    public var errorExpected: Bool { scenario.expect == .faultError && runError != nil && runError == faultError }

    /// A scenario passes when its checks and thresholds pass; a negative control passes when a
    /// check caught its violation; a control of the judging when the judging refused what it
    /// must (a threshold that watched nothing, a fault that never struck). A run that broke, or
    /// performed no operation, never passes.
    public var passed: Bool {
        guard !nothingTested else { return false }
        if scenario.expect == .faultError { return errorExpected && checks.allSatisfy(\.passed) }
        guard runError == nil else { return false }
        switch scenario.expect {
        case .pass: return checks.allSatisfy(\.passed) && thresholds.allSatisfy(\.passed)
        case .violation: return violationCaught
        case .unwitnessedThreshold: return checks.allSatisfy(\.passed) && !thresholds.isEmpty && unwitnessedThresholdsPassing.isEmpty
        case .faultError: return false
        }
    }

    /// For an `unwitnessed-threshold` control: the thresholds that did not fail for want of a
    /// sample (they passed, or were judged on a value): each one is the judging passing vacuously.
    public var unwitnessedThresholdsPassing: [ThresholdResult] {
        thresholds.filter { $0.passed || $0.observed != nil }
    }

    public enum Status: String, Sendable {
        case pass, fail, error
    }

    /// `error` when the run broke (it was not judged, or not completely), unless that error is
    /// the one its control expects; else pass or fail.
    public var status: Status { runError != nil && !errorExpected ? .error : passed ? .pass : .fail }

    public func count(_ outcome: HistoryOutcome) -> Int { operations.count(outcome) }
    public var throughput: Double { seconds > 0 ? Double(operations.total) / seconds : 0 }
}

/// How the Redis circuit breaker fared during a run.
public struct CircuitBreakerSummary: Sendable, Codable, Equatable {
    /// Seconds spent open or half-open (database locks alone).
    public let openSeconds: Double
    /// Times it opened.
    public let openings: Int
    /// Lock calls that skipped Redis.
    public let bypassed: Int

    init(_ breaker: CircuitBreaker) {
        openSeconds = breaker.openSeconds
        openings = breaker.openCount
        bypassed = breaker.bypassCount
    }

    enum CodingKeys: String, CodingKey {
        case openSeconds = "open_seconds"
        case openings
        case bypassed = "redis_lock_bypassed"
    }
}

/// Two clients holding one Redis lock at once.
public struct LockOverlapSummary: Sendable, Codable, Equatable {
    /// Acquisitions that found the lock still held by another client.
    public let overlaps: Int
    public let maxHolders: Int
    public let firstKey: String?

    enum CodingKeys: String, CodingKey {
        case overlaps
        case maxHolders = "max_holders"
        case firstKey = "first_key"
    }
}

/// A run stopped before it could be judged.
public struct RunAborted: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A request to stop the running scenario (SIGINT, SIGTERM), from any thread.
public final class StopRequest: Sendable {
    private let stored = Mutex<String?>(nil)

    public init() {}

    /// The first reason wins (e.g. "interrupted by SIGINT").
    public func request(_ reason: String) {
        stored.withLock { if $0 == nil { $0 = reason } }
    }

    public var reason: String? { stored.withLock { $0 } }
}
