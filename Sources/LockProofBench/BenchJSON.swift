import Foundation
import LockProofCommerce
import LockProofMetrics

/// bench.json (docs/schemas/bench.schema.json): snake_case names, every quantity's unit in its
/// name (`_seconds`, `_per_second`, `_milliseconds`), the tool and schema versions, the start and
/// end times and the machine. Every cell with its repetitions, ceiling and ratio; the decision
/// tables' ranks and picks; the claims' verdicts.
struct BenchJSON: Encodable {
    /// Raised when a field is renamed or removed (an addition keeps it).
    static let schemaVersion = 2

    struct SpreadJSON: Encodable {
        let median: Double
        let min: Double
        let max: Double
        let samples: Int
        let spreadPercent: Double
        init(_ spread: Spread) {
            median = spread.median
            min = spread.min
            max = spread.max
            samples = spread.samples
            spreadPercent = spread.spreadPercent
        }
        enum CodingKeys: String, CodingKey {
            case median, min, max, samples
            case spreadPercent = "spread_percent"
        }
    }

    struct WaitJSON: Encodable {
        let name: String
        let count: Int
        let p50Seconds: Double
        let p99Seconds: Double
        let averageSeconds: Double
        init(_ sample: LockWaitSample) {
            name = sample.lock
            count = sample.count
            p50Seconds = sample.p50
            p99Seconds = sample.p99
            averageSeconds = sample.average
        }
        enum CodingKeys: String, CodingKey {
            case name, count
            case p50Seconds = "p50_seconds"
            case p99Seconds = "p99_seconds"
            case averageSeconds = "average_seconds"
        }
    }

    struct RepetitionJSON: Encodable {
        let run: CellRun
        enum CodingKeys: String, CodingKey {
            case durationSeconds = "duration_seconds", operations, succeeded
            case throughputPerSecond = "throughput_per_second"
            case latencyP50Seconds = "latency_p50_seconds", latencyP95Seconds = "latency_p95_seconds"
            case latencyP99Seconds = "latency_p99_seconds", latencyMaxSeconds = "latency_max_seconds"
            case latencyAverageSeconds = "latency_average_seconds"
            case retryAttempts = "retry_attempts", retryExhausted = "retry_exhausted"
            case optimisticConflicts = "optimistic_conflicts", deadlocks
            case lockWaits = "lock_waits", lockHolds = "lock_holds", failures, checks, violations
            case runError = "run_error", clientCPUSeconds = "client_cpu_seconds"
            case busiestClientOperations = "busiest_client_operations"
            case clientContextSwitches = "client_context_switches"
            case gatewayRecordAverageSeconds = "gateway_record_average_seconds"
            case poolWaits = "pool_waits", poolWaitsHoldingLock = "pool_waits_holding_lock"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(run.seconds, forKey: .durationSeconds)
            try c.encode(run.operations, forKey: .operations)
            try c.encode(run.succeeded, forKey: .succeeded)
            try c.encode(run.throughput, forKey: .throughputPerSecond)
            try c.encode(run.latencyP50, forKey: .latencyP50Seconds)
            try c.encode(run.latencyP95, forKey: .latencyP95Seconds)
            try c.encode(run.latencyP99, forKey: .latencyP99Seconds)
            try c.encode(run.latencyMax, forKey: .latencyMaxSeconds)
            try c.encode(run.latencyAverage, forKey: .latencyAverageSeconds)
            try c.encode(run.retryAttempts, forKey: .retryAttempts)
            try c.encode(run.retryExhausted, forKey: .retryExhausted)
            try c.encode(run.optimisticConflicts, forKey: .optimisticConflicts)
            try c.encode(run.deadlocks, forKey: .deadlocks)
            try c.encode(run.lockWaits.map(WaitJSON.init), forKey: .lockWaits)
            try c.encode(run.lockHolds.map(WaitJSON.init), forKey: .lockHolds)
            try c.encode(run.failures, forKey: .failures)
            try c.encode(run.checks, forKey: .checks)
            try c.encode(run.violations, forKey: .violations)
            try c.encode(run.runError, forKey: .runError)
            try c.encode(run.clientCPUSeconds, forKey: .clientCPUSeconds)
            try c.encode(run.mostIterations, forKey: .busiestClientOperations)
            try c.encode(run.clientContextSwitches, forKey: .clientContextSwitches)
            try c.encode(run.gatewayRecordAverage, forKey: .gatewayRecordAverageSeconds)
            try c.encode(run.poolWaits.map(WaitJSON.init), forKey: .poolWaits)
            try c.encode(run.poolWaitsHoldingLock.map(WaitJSON.init), forKey: .poolWaitsHoldingLock)
        }
    }

    struct CeilingJSON: Encodable {
        let tps: Double
        let transactions: Int
        let failedTransactions: Int
        let latencyAverageMilliseconds: Double?
        let latencyStddevMilliseconds: Double?
        let cpuSeconds: Double?
        let clients: Int?
        let contextSwitches: Int?
        init(_ run: PgbenchResult) {
            tps = run.tps
            transactions = run.transactions
            failedTransactions = run.failedTransactions
            latencyAverageMilliseconds = run.latencyAverageMilliseconds
            latencyStddevMilliseconds = run.latencyStddevMilliseconds
            cpuSeconds = run.cpuSeconds
            clients = run.clients
            contextSwitches = run.contextSwitches
        }
        enum CodingKeys: String, CodingKey {
            case tps = "transactions_per_second", transactions
            case failedTransactions = "failed_transactions"
            case latencyAverageMilliseconds = "latency_average_milliseconds"
            case latencyStddevMilliseconds = "latency_stddev_milliseconds"
            case cpuSeconds = "cpu_seconds", clients
            case contextSwitches = "context_switches"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tps, forKey: .tps)
            try c.encode(transactions, forKey: .transactions)
            try c.encode(failedTransactions, forKey: .failedTransactions)
            try c.encode(latencyAverageMilliseconds, forKey: .latencyAverageMilliseconds)
            try c.encode(latencyStddevMilliseconds, forKey: .latencyStddevMilliseconds)
            try c.encode(cpuSeconds, forKey: .cpuSeconds)
            try c.encode(clients, forKey: .clients)
            try c.encode(contextSwitches, forKey: .contextSwitches)
        }
    }

    struct PoolWaitJSON: Encodable {
        let p50Seconds: Double?
        let p99Seconds: Double?
        let averageSeconds: Double?
        let averageHoldingLockSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case p50Seconds = "p50_seconds", p99Seconds = "p99_seconds", averageSeconds = "average_seconds"
            case averageHoldingLockSeconds = "average_holding_lock_seconds"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(p50Seconds, forKey: .p50Seconds)
            try c.encode(p99Seconds, forKey: .p99Seconds)
            try c.encode(averageSeconds, forKey: .averageSeconds)
            try c.encode(averageHoldingLockSeconds, forKey: .averageHoldingLockSeconds)
        }
    }

    struct CellJSON: Encodable {
        let cell: CellResult
        let rank: Int?
        enum CodingKeys: String, CodingKey {
            case id, `case`, strategy, clients, contention
            case poolSessions = "pool_sessions"
            case negativeControl = "negative_control", usesRedisLock = "uses_redis_lock"
            case invariantHeld = "invariant_held", violations
            case rank, notRankedBecause = "not_ranked_because", spreadTooWideToRank = "spread_too_wide_to_rank"
            case throughputPerSecond = "throughput_per_second", ceilingTransactionsPerSecond = "ceiling_transactions_per_second"
            case ratio, ceilingClients = "ceiling_clients"
            case retriesPerOperation = "retries_per_operation", attemptsPerOperation = "attempts_per_operation"
            case attemptRatio = "attempt_ratio"
            case latencyP50Seconds = "latency_p50_seconds", latencyP95Seconds = "latency_p95_seconds"
            case latencyP99Seconds = "latency_p99_seconds", latencyMaxSeconds = "latency_max_seconds"
            case operations, failedOperations = "failed_operations", failures
            case clientCPUSecondsPerOperation = "client_cpu_seconds_per_operation"
            case ceilingCPUSecondsPerTransaction = "ceiling_cpu_seconds_per_transaction"
            case contextSwitchesPerOperation = "context_switches_per_operation"
            case ceilingContextSwitchesPerTransaction = "ceiling_context_switches_per_transaction"
            case poolWait = "pool_wait", repetitions, ceilingRepetitions = "ceiling_repetitions", errors
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(cell.key.id, forKey: .id)
            try c.encode(cell.key.caseName.rawValue, forKey: .case)
            try c.encode(cell.key.strategy, forKey: .strategy)
            try c.encode(cell.key.clients, forKey: .clients)
            try c.encode(cell.key.contention.rawValue, forKey: .contention)
            try c.encode(cell.key.pool, forKey: .poolSessions)
            try c.encode(cell.negativeControl, forKey: .negativeControl)
            try c.encode(cell.usesRedisLock, forKey: .usesRedisLock)
            try c.encode(cell.invariantHeld, forKey: .invariantHeld)
            try c.encode(cell.violations, forKey: .violations)
            try c.encode(rank, forKey: .rank)
            try c.encode(cell.notRankedBecause, forKey: .notRankedBecause)
            try c.encode(cell.spreadTooWideToRank, forKey: .spreadTooWideToRank)
            try c.encode(cell.throughput.map(SpreadJSON.init), forKey: .throughputPerSecond)
            try c.encode(cell.ceiling.map(SpreadJSON.init), forKey: .ceilingTransactionsPerSecond)
            try c.encode(cell.ratio, forKey: .ratio)
            try c.encode(cell.key.ceilingClients, forKey: .ceilingClients)
            try c.encode(cell.retriesPerOperation, forKey: .retriesPerOperation)
            try c.encode(cell.attemptsPerOperation, forKey: .attemptsPerOperation)
            try c.encode(cell.attemptRatio, forKey: .attemptRatio)
            try c.encode(cell.median { $0.latencyP50 }, forKey: .latencyP50Seconds)
            try c.encode(cell.median { $0.latencyP95 }, forKey: .latencyP95Seconds)
            try c.encode(cell.latencyP99, forKey: .latencyP99Seconds)
            try c.encode(cell.median { $0.latencyMax }, forKey: .latencyMaxSeconds)
            try c.encode(cell.operations, forKey: .operations)
            try c.encode(cell.failedOperations, forKey: .failedOperations)
            try c.encode(cell.failures, forKey: .failures)
            try c.encode(cell.clientCPUPerOperation, forKey: .clientCPUSecondsPerOperation)
            try c.encode(cell.ceilingCPUPerTransaction, forKey: .ceilingCPUSecondsPerTransaction)
            try c.encode(cell.contextSwitchesPerOperation, forKey: .contextSwitchesPerOperation)
            try c.encode(cell.ceilingContextSwitchesPerTransaction, forKey: .ceilingContextSwitchesPerTransaction)
            let poolWait: [String: PoolWaitJSON]? = cell.key.pool == nil ? nil : Dictionary(uniqueKeysWithValues: ["postgres", "redis"].map { pool in
                (pool, PoolWaitJSON(
                    p50Seconds: cell.poolWait(pool, \.p50), p99Seconds: cell.poolWait(pool, \.p99),
                    averageSeconds: cell.poolWait(pool, \.average),
                    averageHoldingLockSeconds: cell.median { run in run.poolWaitsHoldingLock.first { $0.lock == pool }?.average }))
            })
            try c.encode(poolWait, forKey: .poolWait)
            try c.encode(cell.runs.map(RepetitionJSON.init), forKey: .repetitions)
            try c.encode(cell.ceilingRuns.map(CeilingJSON.init), forKey: .ceilingRepetitions)
            try c.encode(cell.errors, forKey: .errors)
        }
    }

    struct DecisionJSON: Encodable {
        let `case`: String
        let pick: String
    }

    struct RedisLockCostJSON: Encodable {
        let cost: RedisLockCost
        enum CodingKeys: String, CodingKey {
            case clients
            case lockproofPairsPerSecond = "lockproof_pairs_per_second"
            case redisBenchmarkAcquireRequestsPerSecond = "redis_benchmark_acquire_requests_per_second"
            case redisBenchmarkReleaseRequestsPerSecond = "redis_benchmark_release_requests_per_second"
            case redisBenchmarkPairsPerSecond = "redis_benchmark_pairs_per_second"
            case ratio
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(cost.clients, forKey: .clients)
            try c.encode(cost.lockProofPairsPerSecond, forKey: .lockproofPairsPerSecond)
            try c.encode(cost.redisBenchmarkAcquire, forKey: .redisBenchmarkAcquireRequestsPerSecond)
            try c.encode(cost.redisBenchmarkRelease, forKey: .redisBenchmarkReleaseRequestsPerSecond)
            try c.encode(cost.redisBenchmarkPairsPerSecond, forKey: .redisBenchmarkPairsPerSecond)
            try c.encode(cost.ratio, forKey: .ratio)
        }
    }

    struct ClaimJSON: Encodable {
        let verdict: ClaimVerdict
        enum CodingKeys: String, CodingKey {
            case number, claim, verdict, summary, evidence
            case measuredBy = "measured_by", cells
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(verdict.number, forKey: .number)
            try c.encode(verdict.claim, forKey: .claim)
            try c.encode(verdict.verdict.rawValue, forKey: .verdict)
            try c.encode(verdict.summary, forKey: .summary)
            try c.encode(verdict.evidence, forKey: .evidence)
            try c.encode(verdict.measuredBy, forKey: .measuredBy)
            try c.encode(verdict.cells, forKey: .cells)
        }
    }

    let results: BenchResults

    init(_ results: BenchResults) { self.results = results }

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version", tool, toolVersion = "tool_version"
        case startedAt = "started_at", endedAt = "ended_at", durationSeconds = "duration_seconds"
        case machine, preset, failed, errors
        case unmeasuredClaims = "unmeasured_claims", wideSpreads = "wide_spreads"
        case decisions, cells
        case redisLockCosts = "redis_lock_costs", claims
        case pgbenchScripts = "pgbench_scripts", pgbenchDefinitions = "pgbench_definitions"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.schemaVersion, forKey: .schemaVersion)
        try c.encode("lockproof", forKey: .tool)
        try c.encode(LockProofBuild.version, forKey: .toolVersion)
        try c.encode(results.startedAt, forKey: .startedAt)
        try c.encode(results.endedAt, forKey: .endedAt)
        try c.encode(results.seconds, forKey: .durationSeconds)
        try c.encode(results.machine, forKey: .machine)
        try c.encode(results.preset, forKey: .preset)
        try c.encode(results.failed, forKey: .failed)
        try c.encode(results.errors, forKey: .errors)
        try c.encode(results.unmeasuredClaims.map(\.number), forKey: .unmeasuredClaims)
        try c.encode(BenchWarnings.wideSpreads(results), forKey: .wideSpreads)
        let tables = DecisionTable.all(results)
        try c.encode(tables.map { DecisionJSON(case: $0.caseName.rawValue, pick: $0.pick) }, forKey: .decisions)
        var ranks: [BenchCellKey: Int] = [:]
        for table in tables { for row in table.rows { ranks[row.key] = row.rank } }
        try c.encode(results.cells.map { CellJSON(cell: $0, rank: ranks[$0.key]) }, forKey: .cells)
        try c.encode(results.redisLockCosts.map(RedisLockCostJSON.init), forKey: .redisLockCosts)
        try c.encode(results.claims.map(ClaimJSON.init), forKey: .claims)
        try c.encode(results.scripts, forKey: .pgbenchScripts)
        try c.encode(results.scriptDefinitions, forKey: .pgbenchDefinitions)
    }
}
