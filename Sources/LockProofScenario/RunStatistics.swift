import Foundation
import Histogram
import LockProofCommerce
import LockProofLocking
import Synchronization

/// A metric a threshold can name: a catalog family or one of the run's built-ins.
public struct ThresholdMetric: Sendable {
    public let name: String
    public let kind: MetricKind
    /// Label names a threshold may filter on, with their allowed values.
    public let labels: [String: [String]]
    /// The cases in which this metric can have samples at all.
    public let cases: Set<CaseName>
    public let help: String

    /// Every metric a threshold may name. Catalog names must match `Dashboards/metric-catalog.txt`
    /// (a test checks it).
    public static let all: [String: ThresholdMetric] = {
        let every = Set(CaseName.allCases)
        // From the descriptors: cases with a strategy that takes a lock, the Redis lock, retries;
        // cases that pay (their own operation or a follow-up).
        func cases(where trait: (StrategyTraits) -> Bool) -> Set<CaseName> {
            every.filter { caseName in caseName.strategyNames.contains { caseName.traits($0).map(trait) ?? false } }
        }
        let lockingCases = cases { !$0.locks.isEmpty }
        let redisLockCases = cases { $0.usesRedisLock }
        let retryingCases = cases { $0.retries }
        let paymentCases = every.filter { ($0.operations + $0.descriptor.followUps).contains(.pay) }
        let outcomes = OperationOutcome.allCases.map(\.rawValue)
        let locks = LockKind.allCases.map(\.rawValue)
        let metrics = [
            ThresholdMetric(name: "throughput", kind: .counter, labels: [:], cases: every,
                            help: "every operation the run finished (count, rate per second)"),
            ThresholdMetric(name: "latency", kind: .trend, labels: [:], cases: every,
                            help: "operation latency in seconds, all outcomes"),
            ThresholdMetric(name: "errors", kind: .counter, labels: [:], cases: every,
                            help: "operations that ended in error or unknown"),
            ThresholdMetric(name: "lockproof_operations_total", kind: .counter, labels: ["outcome": outcomes], cases: every,
                            help: "operations by outcome"),
            ThresholdMetric(name: "lockproof_operation_duration_seconds", kind: .trend, labels: [:], cases: every,
                            help: "operation duration"),
            ThresholdMetric(name: "lockproof_retry_attempts_total", kind: .counter, labels: [:], cases: retryingCases,
                            help: "retries after a conflict"),
            ThresholdMetric(name: "lockproof_retry_exhausted_total", kind: .counter, labels: [:], cases: retryingCases,
                            help: "operations whose every attempt conflicted"),
            ThresholdMetric(name: "lockproof_retry_calls_total", kind: .counter,
                            labels: ["kind": RetryCallKind.allCases.map(\.rawValue)], cases: retryingCases,
                            help: "retried calls by how they ended"),
            ThresholdMetric(name: "lockproof_optimistic_conflicts_total", kind: .counter,
                            labels: ["entity": ["user", "order", "cart_item"]], cases: retryingCases,
                            help: "version checks that found the row changed"),
            ThresholdMetric(name: "lockproof_lock_wait_seconds", kind: .trend, labels: ["lock": locks], cases: lockingCases,
                            help: "time to acquire a Redis or row lock"),
            ThresholdMetric(name: "lockproof_lock_held_seconds", kind: .trend, labels: ["lock": locks], cases: lockingCases,
                            help: "time a Redis lock (to release) or row locks (to commit) were held"),
            ThresholdMetric(name: "lockproof_pool_wait_seconds", kind: .trend, labels: ["pool": PoolKind.allCases.map(\.rawValue)],
                            cases: every, help: "time waiting for a pooled connection (needs workload.connections)"),
            ThresholdMetric(name: "lockproof_lock_acquire_failures_total", kind: .counter,
                            labels: ["lock": locks, "reason": LockFailureReason.allCases.map(\.rawValue)], cases: lockingCases,
                            help: "lock acquisitions that timed out or failed"),
            ThresholdMetric(name: "lockproof_db_deadlocks_total", kind: .counter, labels: [:], cases: every,
                            help: "deadlocks PostgreSQL detected (40P01)"),
            ThresholdMetric(name: "lockproof_db_serialization_failures_total", kind: .counter, labels: [:], cases: every,
                            help: "serialization failures (40001)"),
            ThresholdMetric(name: "lockproof_db_unique_violations_total", kind: .counter, labels: [:],
                            cases: [.chargeBalance, .issueCoupon, .cartQuantity],
                            help: "unique violations (23505)"),
            ThresholdMetric(name: "lockproof_compensations_total", kind: .counter,
                            labels: ["outcome": ["succeeded", "failed"]], cases: paymentCases,
                            help: "compensations by outcome"),
            ThresholdMetric(name: "lockproof_compensations_pending", kind: .gauge, labels: [:], cases: paymentCases,
                            help: "compensations recorded but not carried out, at the end of the run"),
            ThresholdMetric(name: "lockproof_distributed_lock_lost_total", kind: .counter, labels: [:], cases: redisLockCases,
                            help: "leases that expired while held"),
            ThresholdMetric(name: RecoveryWorkers.passes, kind: .counter, labels: [:], cases: paymentCases,
                            help: "payment recovery passes run during the workload (needs workload.recovery)"),
            ThresholdMetric(name: RecoveryWorkers.settled, kind: .counter, labels: [:], cases: paymentCases,
                            help: "payments the recovery workers marked PAID or compensated during the workload (needs workload.recovery)"),
            ThresholdMetric(name: RecoveryWorkers.errors, kind: .counter, labels: [:], cases: paymentCases,
                            help: "recovery passes during the workload that failed or met an error (needs workload.recovery)"),
            ThresholdMetric(name: RunStatistics.circuitBreakerOpenings, kind: .counter, labels: [:], cases: redisLockCases,
                            help: "times the Redis circuit breaker opened (from closed, or again after a failed probe)"),
            ThresholdMetric(name: RunStatistics.fencedWritesRefused, kind: .counter, labels: [:], cases: [.chargeBalance],
                            help: "writes the database refused for a stale fencing token (redis-lock-fenced)"),
        ]
        return Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, $0) })
    }()

    /// Catalog families no threshold can use, and why.
    public static let unusable: [String: String] = [
        "lockproof_circuit_breaker_state": "it is a state, not a measurement; the summary reports the time the breaker spent open",
        "lockproof_circuit_breaker_open_seconds_total": "a run's JSON report and summary give the time the breaker spent open (circuit_breaker.open_seconds)",
        "lockproof_build_info": "it is a constant, not a measurement",
        "lockproof_http_requests_total": "only `lockproof serve --api-address` answers HTTP API requests; a run calls the core directly",
        "lockproof_http_request_duration_seconds": "only `lockproof serve --api-address` answers HTTP API requests; a run calls the core directly",
        "lockproof_http_rate_limited_total": "only `lockproof serve --api-address --rate-limit` refuses requests; a run calls the core directly",
        "lockproof_target_requests_total": "the requests of a run through a target are its operations: thresholds on `errors` and `latency` read them",
        "lockproof_target_request_duration_seconds": "the requests of a run through a target are its operations: a `latency` threshold reads them",
    ]
}

/// A sample series key: metric name plus label values, in a fixed order.
struct SeriesKey: Hashable, Sendable {
    let metric: String
    let labels: [String: String]
    /// The name and labels as one text (`metric{a=x,b=y}`), hashed once: hashing and comparing
    /// the name and the labels' strings on every sample cost more than the rest of recording it
    /// (callgrind, `scripts/profile-client.sh`). A key made once compares with itself by its
    /// text's storage.
    private let identity: String
    private let hash: Int

    init(metric: String, labels: [String: String]) {
        self.metric = metric
        self.labels = labels
        identity = metric + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
        var hasher = Hasher()
        hasher.combine(identity)
        hash = hasher.finalize()
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (lhs: SeriesKey, rhs: SeriesKey) -> Bool {
        lhs.hash == rhs.hash && lhs.identity == rhs.identity
    }
}

/// The keys of the series every operation records, made once.
private enum EveryOperation {
    static let throughput = SeriesKey(metric: "throughput", labels: [:])
    static let errors = SeriesKey(metric: "errors", labels: [:])
    static let duration = SeriesKey(metric: "lockproof_operation_duration_seconds", labels: [:])
    static let latency = SeriesKey(metric: "latency", labels: [:])
    static let retryAttempts = SeriesKey(metric: "lockproof_retry_attempts_total", labels: [:])
    static let success = outcome(.success)
    static let rejected = outcome(.rejected)
    static let error = outcome(.error)
    static let unknown = outcome(.unknown)
    static let redisWait = SeriesKey(metric: "lockproof_lock_wait_seconds", labels: ["lock": LockKind.redis.rawValue])
    static let rowWait = SeriesKey(metric: "lockproof_lock_wait_seconds", labels: ["lock": LockKind.row.rawValue])
    static let redisHeld = SeriesKey(metric: "lockproof_lock_held_seconds", labels: ["lock": LockKind.redis.rawValue])
    static let rowHeld = SeriesKey(metric: "lockproof_lock_held_seconds", labels: ["lock": LockKind.row.rawValue])

    private static func outcome(_ outcome: OperationOutcome) -> SeriesKey {
        SeriesKey(metric: "lockproof_operations_total", labels: ["outcome": outcome.rawValue])
    }

    static func key(_ outcome: OperationOutcome) -> SeriesKey {
        switch outcome {
        case .success: return success
        case .rejected: return rejected
        case .error: return error
        case .unknown: return unknown
        }
    }

    static func wait(_ kind: LockKind) -> SeriesKey { kind == .redis ? redisWait : rowWait }
    static func held(_ kind: LockKind) -> SeriesKey { kind == .redis ? redisHeld : rowHeld }
}

/// Everything a run measured, aggregated from the core's events and the operations' outcomes.
/// Thread-safe; cheap per event. Forwards every event to `forward` (the Prometheus exporter).
public final class RunStatistics: EventSink, @unchecked Sendable {
    /// Every series, behind one `Mutex` every client thread shares.
    private let series = Mutex(Series())
    private let forward: (any EventSink)?

    public init(forward: (any EventSink)? = nil) { self.forward = forward }

    public func record(_ event: LockProofEvent, caseName: String) {
        forward?.record(event, caseName: caseName)
        series.withLock { s in Self.apply(event, to: &s) }
    }

    private static func apply(_ event: LockProofEvent, to s: inout Series) {
        switch event {
        case .lockWaited(let kind, let seconds):
            s.observe(EveryOperation.wait(kind), seconds)
        case .lockHeld(let kind, let seconds):
            s.observe(EveryOperation.held(kind), seconds)
        case .lockAcquireFailed(let kind, let reason):
            s.count("lockproof_lock_acquire_failures_total", ["lock": kind.rawValue, "reason": reason.rawValue])
        case .retryAttempt:
            s.count(EveryOperation.retryAttempts)
        case .retryExhausted:
            s.count("lockproof_retry_exhausted_total", [:])
        case .retryCall(let kind):
            s.count("lockproof_retry_calls_total", ["kind": kind.rawValue])
        case .optimisticConflict(let entity):
            s.count("lockproof_optimistic_conflicts_total", ["entity": entity])
        case .databaseError(let kind, _):
            switch kind {
            case .deadlock: s.count("lockproof_db_deadlocks_total", [:])
            case .serializationFailure: s.count("lockproof_db_serialization_failures_total", [:])
            case .uniqueViolation: s.count("lockproof_db_unique_violations_total", [:])
            default: break
            }
        case .compensation(let succeeded):
            s.count("lockproof_compensations_total", ["outcome": succeeded ? "succeeded" : "failed"])
        case .distributedLockLost:
            s.count("lockproof_distributed_lock_lost_total", [:])
        case .fencedWriteRefused:
            s.count("lockproof_distributed_lock_lost_total", [:])
            s.count(Self.fencedWritesRefused, [:])
        case .redisLockBypassed:
            s.count(Self.redisLockBypassed, [:])
        case .circuitBreaker(let state):
            // The runner reads the breaker's own time line; openings are also a threshold's counter.
            if state == .open { s.count(Self.circuitBreakerOpenings, [:]) }
        case .lockAcquired, .lockReleased:
            break  // the run's history records the holds (`LockHoldEvents`)
        case .poolWaited(let pool, let seconds, let holdingLock):
            s.observe("lockproof_pool_wait_seconds", ["pool": pool.rawValue], seconds)
            if holdingLock { s.observe(Self.poolWaitHoldingLock, ["pool": pool.rawValue], seconds) }
        }
    }

    /// One finished operation.
    public func recordOperation(outcome: OperationOutcome, seconds: Double) {
        series.withLock { s in
            s.count(EveryOperation.key(outcome))
            s.count(EveryOperation.throughput)
            if outcome == .error || outcome == .unknown { s.count(EveryOperation.errors) }
            s.observe(EveryOperation.duration, seconds)
            s.observe(EveryOperation.latency, seconds)
        }
    }

    /// Internal counters: writes the database refused for a stale fencing token, and lock calls
    /// that skipped Redis while its circuit breaker was open.
    public static let fencedWritesRefused = "fenced_writes_refused"
    public static let redisLockBypassed = "redis_lock_bypassed"
    /// Times the circuit breaker opened (from closed, or again after a failed probe).
    public static let circuitBreakerOpenings = "circuit_breaker_openings"
    /// Pool waits of clients that held a Redis lock meanwhile: time added to that lock's hold.
    public static let poolWaitHoldingLock = "pool_wait_holding_lock_seconds"

    /// Gauges of a finished run: the client threads' CPU seconds over their operations, and the
    /// operations of the busiest client.
    public static let clientCPUSeconds = "client_cpu_seconds"
    public static let clientIterationsMost = "client_iterations_most"
    /// The client threads' context switches over their operations.
    public static let clientContextSwitches = "client_context_switches"

    /// Internal trend: how long the simulated gateway took to record a charge (its own session,
    /// shared by every client), seconds.
    public static let gatewayRecordSeconds = "gateway_record_seconds"

    func observe(_ metric: String, seconds: Double) {
        series.withLock { $0.observe(metric, [:], seconds) }
    }

    /// Internal counter: payments that reached the gateway (what compensation counters watch).
    static let gatewayCalls = "gateway_calls"

    func countGatewayCall() {
        series.withLock { $0.count(Self.gatewayCalls, [:]) }
    }

    /// An internal counter of the run (no labels), raised by `amount`.
    func countInternal(_ metric: String, by amount: Int = 1) {
        guard amount > 0 else { return }
        series.withLock { s in for _ in 0..<amount { s.count(metric, [:]) } }
    }

    public func setGauge(_ name: String, _ value: Double) {
        series.withLock { $0.gauges[name] = value }
    }

    /// The sum of a counter over the series whose labels include `filter`.
    public func count(_ metric: String, where filter: [String: String] = [:]) -> Int {
        series.withLock { s in
            var total = 0
            for (key, value) in s.counters where key.metric == metric && filter.allSatisfy({ key.labels[$0.key] == $0.value }) {
                total += value
            }
            return total
        }
    }

    /// The merged samples of a trend over the series whose labels include `filter`, in seconds.
    public func trend(_ metric: String, where filter: [String: String] = [:]) -> TrendSummary? {
        series.withLock { s in
            var merged: Histogram<UInt64>?
            for (key, histogram) in s.trends
            where key.metric == metric && filter.allSatisfy({ key.labels[$0.key] == $0.value }) {
                if merged == nil { merged = histogram } else { merged!.add(histogram) }
            }
            guard let merged, merged.totalCount > 0 else { return nil }
            return TrendSummary(merged)
        }
    }

    public func gauge(_ name: String) -> Double? { series.withLock { $0.gauges[name] } }
}

/// What a run measured: counters, trends (HDR histograms, microseconds) and gauges by series.
private struct Series {
    var counters: [SeriesKey: Int] = [:]
    var trends: [SeriesKey: Histogram<UInt64>] = [:]
    var gauges: [String: Double] = [:]

    mutating func count(_ metric: String, _ labels: [String: String]) {
        count(SeriesKey(metric: metric, labels: labels))
    }

    mutating func count(_ key: SeriesKey) {
        counters[key, default: 0] += 1
    }

    mutating func observe(_ metric: String, _ labels: [String: String], _ seconds: Double) {
        observe(SeriesKey(metric: metric, labels: labels), seconds)
    }

    mutating func observe(_ key: SeriesKey, _ seconds: Double) {
        // In place: taking the histogram out of the dictionary and back would copy its buckets on
        // every sample, under the lock every client thread shares.
        _ = trends[key, default: Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)]
            .record(UInt64(max(0, seconds) * 1_000_000))  // microseconds
    }
}

/// Percentiles of a trend, in seconds.
public struct TrendSummary: Sendable, Equatable {
    public let count: Int
    public let average: Double
    public let minimum: Double
    public let maximum: Double
    private let percentiles: [Double: Double]

    init(_ histogram: Histogram<UInt64>) {
        count = Int(histogram.totalCount)
        average = histogram.mean / 1_000_000
        minimum = Double(histogram.min) / 1_000_000
        maximum = Double(histogram.max) / 1_000_000
        var table: [Double: Double] = [:]
        for p in [50.0, 90.0, 95.0, 99.0, 99.9] { table[p] = Double(histogram.valueAtPercentile(p)) / 1_000_000 }
        percentiles = table
        self.histogram = histogram
    }
    private let histogram: Histogram<UInt64>

    public func percentile(_ p: Double) -> Double {
        percentiles[p] ?? Double(histogram.valueAtPercentile(p)) / 1_000_000
    }

    public static func == (lhs: TrendSummary, rhs: TrendSummary) -> Bool {
        lhs.count == rhs.count && lhs.average == rhs.average && lhs.maximum == rhs.maximum
    }
}
