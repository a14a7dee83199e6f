import Foundation
import LockProofCommerce
import LockProofScenario

/// A median with the spread of the repetitions it came from.
public struct Spread: Sendable, Codable, Equatable {
    public let median: Double
    public let min: Double
    public let max: Double
    public let samples: Int

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = sorted.first!
        max = sorted.last!
        samples = sorted.count
    }

    /// (max − min) / median, as a percentage: how much the repetitions disagree.
    public var spreadPercent: Double { median > 0 ? (max - min) / median * 100 : 0 }
}

/// Waits for one lock kind, in seconds.
public struct LockWaitSample: Sendable, Codable, Equatable {
    public let lock: String
    public let count: Int
    public let p50: Double
    public let p99: Double
    public let average: Double
}

/// One repetition of one cell, measured by the scenario runner.
public struct CellRun: Sendable, Codable, Equatable {
    public let seconds: Double
    public let operations: Int
    public let succeeded: Int
    /// Finished operations per second, every outcome (what pgbench's tps counts too).
    public let throughput: Double
    public let latencyP50: Double?
    public let latencyP95: Double?
    public let latencyP99: Double?
    public let latencyMax: Double?
    public let retryAttempts: Int
    public let retryExhausted: Int
    public let optimisticConflicts: Int
    public let deadlocks: Int
    public let lockWaits: [LockWaitSample]
    /// How long locks were held, by lock kind (`lockproof_lock_held_seconds`).
    public let lockHolds: [LockWaitSample]
    /// Failure reason → count (`insufficient_stock`, `conflict`, `deadlock`, …).
    public let failures: [String: Int]
    /// Checker name → passed.
    public let checks: [String: Bool]
    /// Violation names the checkers reported.
    public let violations: [String]
    public let runError: String?

    public var retriesPerOperation: Double { operations > 0 ? Double(retryAttempts) / Double(operations) : 0 }
    public var invariantHeld: Bool { runError == nil && checks.values.allSatisfy { $0 } }
}

extension CellRun {
    init(_ result: ScenarioResult) {
        let statistics = result.statistics
        let latency = statistics.trend("latency")
        let failures = result.operations.reasons
        func samples(_ metric: String) -> [LockWaitSample] {
            ["redis", "row"].compactMap { lock in
                statistics.trend(metric, where: ["lock": lock]).map {
                    LockWaitSample(lock: lock, count: $0.count, p50: $0.percentile(50), p99: $0.percentile(99), average: $0.average)
                }
            }
        }
        let waits = samples("lockproof_lock_wait_seconds")
        self.init(
            seconds: result.seconds, operations: result.operations.total, succeeded: result.operations.ok,
            throughput: result.seconds > 0 ? Double(result.operations.total) / result.seconds : 0, latencyP50: latency?.percentile(50), latencyP95: latency?.percentile(95),
            latencyP99: latency?.percentile(99), latencyMax: latency?.maximum,
            retryAttempts: statistics.count("lockproof_retry_attempts_total"),
            retryExhausted: statistics.count("lockproof_retry_exhausted_total"),
            optimisticConflicts: statistics.count("lockproof_optimistic_conflicts_total"),
            deadlocks: statistics.count("lockproof_db_deadlocks_total"), lockWaits: waits,
            lockHolds: samples("lockproof_lock_held_seconds"), failures: failures,
            checks: Dictionary(result.checks.map { ($0.name, $0.passed) }, uniquingKeysWith: { $0 && $1 }),
            violations: result.checks.flatMap { $0.violations.map(\.name) }, runError: result.runError)
    }
}

/// Everything measured for one cell, with its aggregates.
public struct CellResult: Sendable, Codable {
    public let key: BenchCellKey
    public var runs: [CellRun]
    public var ceilingRuns: [PgbenchResult]
    /// Set when a repetition or the ceiling could not be measured: the cell is an error.
    public var errors: [String]

    public var negativeControl: Bool { BenchCase.isNegativeControl(key.caseName, key.strategy) }
    public var usesRedisLock: Bool { BenchCase.usesRedisLock(key.caseName, key.strategy) }
    public var throughput: Spread? { Spread(runs.map(\.throughput)) }
    public var ceiling: Spread? { Spread(ceilingRuns.map(\.tps)) }
    /// Median throughput over median ceiling.
    public var ratio: Double? {
        guard let throughput, let ceiling, ceiling.median > 0 else { return nil }
        return throughput.median / ceiling.median
    }
    public var invariantHeld: Bool { !runs.isEmpty && runs.allSatisfy(\.invariantHeld) }
    public var violations: [String] { Array(Set(runs.flatMap(\.violations))).sorted() }
    public func median(_ value: (CellRun) -> Double?) -> Double? { Spread(runs.compactMap(value))?.median }
    public var retriesPerOperation: Double? { median { $0.retriesPerOperation } }
    public func lockWait(_ lock: String, _ percentile: (LockWaitSample) -> Double) -> Double? {
        median { run in run.lockWaits.first { $0.lock == lock }.map(percentile) }
    }
    public var failures: [String: Int] {
        var total: [String: Int] = [:]
        for run in runs { for (reason, count) in run.failures { total[reason, default: 0] += count } }
        return total
    }
    public var operations: Int { runs.map(\.operations).reduce(0, +) }
}

/// The Redis lock's own cost: what LockProof's lock client achieves per acquire + release against
/// what redis-benchmark measures for the same two commands.
public struct RedisLockCost: Sendable, Codable {
    public let clients: Int
    /// LockProof: `SET key token NX PX ttl` then the compare-and-delete `EVAL`, per second.
    public let lockProofPairsPerSecond: Double
    /// redis-benchmark: requests per second of the acquire EVAL (SET NX PX + INCR) and the release EVAL alone.
    public let redisBenchmarkAcquire: Double
    public let redisBenchmarkRelease: Double
    /// Pairs per second redis-benchmark's figures allow: 1 / (1/set + 1/eval).
    public var redisBenchmarkPairsPerSecond: Double { 1 / (1 / redisBenchmarkAcquire + 1 / redisBenchmarkRelease) }
    public var ratio: Double { lockProofPairsPerSecond / redisBenchmarkPairsPerSecond }
}

/// Everything a benchmark run produced.
public struct BenchResults: Sendable, Codable {
    public var preset: String
    public var startedAt: String
    public var seconds: Double
    public var cells: [CellResult]
    public var scripts: [String: String]
    public var redisLockCosts: [RedisLockCost]
    public var claims: [ClaimVerdict]
    /// Errors of the run as a whole (a tool missing, an experiment that could not run).
    public var errors: [String]

    /// Any error anywhere makes the run fail: a verdict never hides one.
    public var failed: Bool { !errors.isEmpty || cells.contains { !$0.errors.isEmpty } }

    public func cells(_ caseName: CaseName) -> [CellResult] { cells.filter { $0.key.caseName == caseName } }

    public func cell(_ caseName: CaseName, _ strategy: String, _ contention: Contention, _ clients: Int) -> CellResult? {
        cells.first {
            $0.key.caseName == caseName && $0.key.strategy == strategy && $0.key.contention == contention
                && $0.key.clients == clients
        }
    }

    /// Strategies of a case ranked by median throughput at one point, fastest first; a strategy
    /// that broke its invariant (or a negative control) is never ranked above one that kept it.
    public func ranking(_ caseName: CaseName, _ contention: Contention, _ clients: Int) -> [CellResult] {
        cells.filter { $0.key.caseName == caseName && $0.key.contention == contention && $0.key.clients == clients }
            .sorted { lhs, rhs in
                let lhsValid = lhs.invariantHeld && !lhs.negativeControl && lhs.errors.isEmpty
                let rhsValid = rhs.invariantHeld && !rhs.negativeControl && rhs.errors.isEmpty
                if lhsValid != rhsValid { return lhsValid }
                return (lhs.throughput?.median ?? 0) > (rhs.throughput?.median ?? 0)
            }
    }
}
