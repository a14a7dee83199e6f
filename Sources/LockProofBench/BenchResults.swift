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
    public var latencyAverage: Double? = nil
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
    /// The client threads' CPU time over their operations (user + system), in seconds.
    public var clientCPUSeconds: Double? = nil
    /// Operations of the busiest client.
    public var mostIterations: Int? = nil
    /// The client threads' context switches over their operations.
    public var clientContextSwitches: Int? = nil
    /// Average time the simulated gateway took to record a charge (payments), seconds.
    public var gatewayRecordAverage: Double? = nil
    /// Waits for a pooled connection, by pool (`postgres`, `redis`), when the clients share pools.
    public var poolWaits: [LockWaitSample] = []
    /// Of those, the waits of clients holding a Redis lock meanwhile (they lengthen its hold).
    public var poolWaitsHoldingLock: [LockWaitSample] = []

    public var retriesPerOperation: Double { operations > 0 ? Double(retryAttempts) / Double(operations) : 0 }
    /// Transactions attempted per finished operation: the first attempt plus each retry.
    public var attemptsPerOperation: Double { 1 + retriesPerOperation }
    /// Attempted transactions per second: what the database was asked to do, retries included.
    public var attemptedThroughput: Double { throughput * attemptsPerOperation }
    /// The clients' CPU time per finished operation, in seconds.
    public var clientCPUPerOperation: Double? {
        clientCPUSeconds.map { $0 / Double(max(1, operations)) }
    }
    public var contextSwitchesPerOperation: Double? {
        clientContextSwitches.map { Double($0) / Double(max(1, operations)) }
    }
    public var invariantHeld: Bool { runError == nil && checks.values.allSatisfy { $0 } }
}

extension CellRun {
    init(_ result: ScenarioResult) {
        let statistics = result.statistics
        let latency = statistics.trend("latency")
        let failures = result.operations.reasons
        func samples(_ metric: String, label: String = "lock", values: [String] = ["redis", "row"]) -> [LockWaitSample] {
            values.compactMap { value in
                statistics.trend(metric, where: [label: value]).map {
                    LockWaitSample(lock: value, count: $0.count, p50: $0.percentile(50), p99: $0.percentile(99), average: $0.average)
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
        latencyAverage = latency?.average
        clientCPUSeconds = statistics.gauge(RunStatistics.clientCPUSeconds)
        mostIterations = statistics.gauge(RunStatistics.clientIterationsMost).map { Int($0) }
        clientContextSwitches = statistics.gauge(RunStatistics.clientContextSwitches).map { Int($0) }
        gatewayRecordAverage = statistics.trend(RunStatistics.gatewayRecordSeconds)?.average
        poolWaits = samples("lockproof_pool_wait_seconds", label: "pool", values: ["postgres", "redis"])
        poolWaitsHoldingLock = samples(RunStatistics.poolWaitHoldingLock, label: "pool", values: ["postgres", "redis"])
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
    public var attemptsPerOperation: Double? { median { $0.attemptsPerOperation } }
    /// Median attempted transactions per second over the median ceiling: the strategy's retries
    /// counted as the work they are, so a reader sees the client's cost apart from the retries'.
    public var attemptRatio: Double? {
        guard let attempted = median({ $0.attemptedThroughput }), let ceiling, ceiling.median > 0 else { return nil }
        return attempted / ceiling.median
    }
    public var clientCPUPerOperation: Double? { median { $0.clientCPUPerOperation } }
    public var ceilingCPUPerTransaction: Double? { Spread(ceilingRuns.compactMap(\.cpuPerTransaction))?.median }
    public var contextSwitchesPerOperation: Double? { median { $0.contextSwitchesPerOperation } }
    public var ceilingContextSwitchesPerTransaction: Double? {
        Spread(ceilingRuns.compactMap { run in run.contextSwitches.map { Double($0) / Double(max(1, run.transactions)) } })?.median
    }
    public var ceilingLatencyAverage: Double? {
        (Spread(ceilingRuns.compactMap(\.latencyAverageMilliseconds))?.median).map { $0 / 1000 }
    }
    public func poolWait(_ pool: String, _ percentile: (LockWaitSample) -> Double) -> Double? {
        median { run in run.poolWaits.first { $0.lock == pool }.map(percentile) }
    }
    /// Median of the operations' average latency (seconds).
    public var latencyAverage: Double? { median { $0.latencyAverage } }
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
    /// When the run ended (ISO 8601, UTC); empty in results built by hand.
    public var endedAt = ""
    /// The machine and the servers' versions.
    public var machine: MachineInfo? = nil
    public var seconds: Double
    public var cells: [CellResult]
    public var scripts: [String: String]
    /// The text constants each script takes as `-D name=value`.
    public var scriptDefinitions: [String: [String: String]] = [:]
    public var redisLockCosts: [RedisLockCost]
    public var claims: [ClaimVerdict]
    /// Errors of the run as a whole (a tool missing, an experiment that could not run).
    public var errors: [String]

    /// Any error anywhere makes the run fail: a verdict never hides one.
    public var hadErrors: Bool { !errors.isEmpty || cells.contains { !$0.errors.isEmpty } }
    /// Claims the run could not judge (an error, or options that left out what they need).
    public var unmeasuredClaims: [ClaimVerdict] { claims.filter { $0.verdict == .notMeasured } }
    /// Exit 1: an error, or a claim left unmeasured (`--help` promises it).
    public var failed: Bool { hadErrors || !unmeasuredClaims.isEmpty }

    /// The unpooled cells of a case.
    public func cells(_ caseName: CaseName) -> [CellResult] { cells.filter { $0.key.caseName == caseName && $0.key.pool == nil } }

    public func cell(_ caseName: CaseName, _ strategy: String, _ contention: Contention, _ clients: Int, pool: Int? = nil)
        -> CellResult?
    {
        cells.first {
            $0.key.caseName == caseName && $0.key.strategy == strategy && $0.key.contention == contention
                && $0.key.clients == clients && $0.key.pool == pool
        }
    }

    /// The cells of the matrix proper: every client with connections of its own.
    public var unpooledCells: [CellResult] { cells.filter { $0.key.pool == nil } }

    /// Strategies of a case ranked by median throughput at one point, fastest first, in tiers: the
    /// strategies that kept their invariant without failing an operation, then those that failed
    /// operations (retry exhaustion, timeouts), then the broken ones, the controls and errors.
    public func ranking(_ caseName: CaseName, _ contention: Contention, _ clients: Int) -> [CellResult] {
        func tier(_ cell: CellResult) -> Int {
            guard cell.invariantHeld && !cell.negativeControl && cell.errors.isEmpty else { return 2 }
            return cell.failedOperations > 0 ? 1 : 0
        }
        return cells.filter {
            $0.key.caseName == caseName && $0.key.contention == contention && $0.key.clients == clients && $0.key.pool == nil
        }
            .sorted { lhs, rhs in
                if tier(lhs) != tier(rhs) { return tier(lhs) < tier(rhs) }
                return (lhs.throughput?.median ?? 0) > (rhs.throughput?.median ?? 0)
            }
    }
}
