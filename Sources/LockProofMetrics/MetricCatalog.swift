import LockProofAPI
import LockProofCommerce
import LockProofLocking

// The one place that declares every metric LockProof exports: name, type, help, labels, the values
// each label may take, buckets, and the label combinations exported (at 0) from the start.
// Dashboards/metric-catalog.txt lists the same family names; a test keeps the two equal, and
// docs/METRICS.md documents them.
//
// Label values come only from the fixed sets below, never from an id, so the number of series is
// bounded and known before the first scrape. Exporting every combination at 0 from the start is
// what lets `increase()` in the alert rules see the first event of a series.

public struct MetricLabel: Sendable, Equatable {
    public let name: String
    /// Every value the label may take.
    public let values: [String]
}

public struct MetricFamily: Sendable {
    public let name: String
    public let kind: MetricKind
    public let help: String
    public let labels: [MetricLabel]
    /// Upper bounds of the histogram buckets, in seconds (`+Inf` is implied); empty for the others.
    public let buckets: [Double]
    /// Every label combination exported from the start, values in the order of `labels`.
    public let series: [[String]]

    public var labelNames: [String] { labels.map(\.name) }

    /// `series` defaults to every combination of the label values.
    init(
        _ name: String, _ kind: MetricKind, help: String, labels: [MetricLabel] = [], buckets: [Double] = [],
        series: [[String]]? = nil
    ) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.buckets = buckets
        self.series = series ?? labels.reduce([[]]) { partial, label in
            partial.flatMap { prefix in label.values.map { prefix + [$0] } }
        }
    }
}

public enum LockProofBuild {
    /// Exported as `lockproof_build_info{version}` and printed by `lockproof --version`.
    public static let version = LockProofRelease.version
}

public enum MetricCatalog {
    // MARK: Label value sets

    /// Catch-all value for a label whose value the catalog does not know (e.g. a constraint added
    /// to the schema later): the event is still counted, and the series set stays bounded.
    public static let otherValue = "other"

    public static let caseNames = CaseName.allCases.map(\.rawValue)

    /// The strategies a case can run with: its own strategy enum.
    public static func strategies(of caseName: CaseName) -> [String] { caseName.strategyNames }

    /// Every strategy name of any case (the `strategy` label's values).
    public static let strategyNames: [String] = {
        var seen = Set<String>()
        return CaseName.allCases.flatMap(strategies(of:)).filter { seen.insert($0).inserted }
    }()

    /// The (case, strategy) pairs that exist.
    public static let caseStrategyPairs: [[String]] = CaseName.allCases.flatMap { caseName in
        strategies(of: caseName).map { [caseName.rawValue, $0] }
    }

    public static let outcomes = OperationOutcome.allCases.map(\.rawValue)
    public static let retryCallKinds = RetryCallKind.allCases.map(\.rawValue)
    /// The entities whose version column the cases check (`OptimisticConflict.entity`).
    public static let conflictEntities = ["user", "order", "cart_item", otherValue]
    public static let lockKinds = LockKind.allCases.map(\.rawValue)
    public static let lockFailureReasons = LockFailureReason.allCases.map(\.rawValue)
    /// The schema's unique constraints (see Schema.swift), as PostgreSQL names them in errors.
    public static let uniqueConstraints = [
        "user_coupons_user_coupon_unique", "cart_items_user_product_unique", "idempotency_keys_pkey",
        "compensations_order_id_key", otherValue,
    ]
    public static let compensationOutcomes = ["succeeded", "failed"]
    public static let circuitBreakerNames = ["redis"]
    public static let circuitBreakerStates = CircuitBreakerState.allCases.map(\.rawValue)

    /// Latency buckets from 1 ms (an uncontended row lock) to 10 s (the Redis lock wait limit).
    public static let secondsBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    static let caseLabel = MetricLabel(name: "case", values: caseNames)
    static let strategyLabel = MetricLabel(name: "strategy", values: strategyNames)
    static let lockLabel = MetricLabel(name: "lock", values: lockKinds)

    // MARK: Families

    public static let operations = MetricFamily(
        "lockproof_operations_total", .counter,
        help: "Finished operations by case, strategy and outcome (success, rejected = business refusal, error, unknown = may or may not have happened).",
        labels: [caseLabel, strategyLabel, MetricLabel(name: "outcome", values: outcomes)],
        series: caseStrategyPairs.flatMap { pair in outcomes.map { pair + [$0] } })

    public static let operationDuration = MetricFamily(
        "lockproof_operation_duration_seconds", .histogram,
        help: "Duration of finished operations (every outcome) by case and strategy, in seconds.",
        labels: [caseLabel, strategyLabel], buckets: secondsBuckets, series: caseStrategyPairs)

    public static let retryAttempts = MetricFamily(
        "lockproof_retry_attempts_total", .counter,
        help: "Retries of a whole transaction after a conflict (the first attempt is not counted).",
        labels: [caseLabel])

    public static let retryExhausted = MetricFamily(
        "lockproof_retry_exhausted_total", .counter,
        help: "Operations that gave up after the maximum number of attempts, every one of them a conflict.",
        labels: [caseLabel])

    public static let retryCalls = MetricFamily(
        "lockproof_retry_calls_total", .counter,
        help: "Calls through the retry policy by how they ended (Resilience4j's kinds).",
        labels: [caseLabel, MetricLabel(name: "kind", values: retryCallKinds)])

    public static let optimisticConflicts = MetricFamily(
        "lockproof_optimistic_conflicts_total", .counter,
        help: "Optimistic version checks that found the row changed by someone else, by entity.",
        labels: [caseLabel, MetricLabel(name: "entity", values: conflictEntities)])

    public static let lockWait = MetricFamily(
        "lockproof_lock_wait_seconds", .histogram,
        help: "Time spent acquiring a lock (redis = the distributed lock, row = SELECT FOR UPDATE), in seconds.",
        labels: [caseLabel, lockLabel], buckets: secondsBuckets)

    public static let lockHeld = MetricFamily(
        "lockproof_lock_held_seconds", .histogram,
        help: "Time a lock was held (redis = acquisition to release, row = first SELECT FOR UPDATE to commit or rollback), in seconds.",
        labels: [caseLabel, lockLabel], buckets: secondsBuckets)

    public static let lockAcquireFailures = MetricFamily(
        "lockproof_lock_acquire_failures_total", .counter,
        help: "Lock acquisitions that failed, by lock and reason (timeout = waited too long, error = the server failed).",
        labels: [caseLabel, lockLabel, MetricLabel(name: "reason", values: lockFailureReasons)])

    public static let deadlocks = MetricFamily(
        "lockproof_db_deadlocks_total", .counter,
        help: "Transactions PostgreSQL aborted as deadlock victims (SQLSTATE 40P01).",
        labels: [caseLabel])

    public static let serializationFailures = MetricFamily(
        "lockproof_db_serialization_failures_total", .counter,
        help: "Transactions PostgreSQL aborted with a serialization failure (SQLSTATE 40001).",
        labels: [caseLabel])

    public static let uniqueViolations = MetricFamily(
        "lockproof_db_unique_violations_total", .counter,
        help: "Statements PostgreSQL refused with a unique violation (SQLSTATE 23505), by constraint.",
        labels: [caseLabel, MetricLabel(name: "constraint", values: uniqueConstraints)])

    public static let compensations = MetricFamily(
        "lockproof_compensations_total", .counter,
        help: "Compensation transactions that restore balance and stock after a failed payment, by outcome.",
        labels: [MetricLabel(name: "outcome", values: compensationOutcomes)])

    public static let compensationsPending = MetricFamily(
        "lockproof_compensations_pending", .gauge,
        help: "Compensations durably recorded but not yet carried out.")

    public static let circuitBreakerState = MetricFamily(
        "lockproof_circuit_breaker_state", .gauge,
        help: "Circuit breaker state, one series per state: 1 for the current state, 0 for the others.",
        labels: [
            MetricLabel(name: "name", values: circuitBreakerNames),
            MetricLabel(name: "state", values: circuitBreakerStates),
        ])

    public static let circuitBreakerOpenSeconds = MetricFamily(
        "lockproof_circuit_breaker_open_seconds_total", .counter,
        help: "Seconds the circuit breaker spent not closed (open, or half-open while its probe runs): Redis skipped, database locks only.",
        labels: [MetricLabel(name: "name", values: circuitBreakerNames)])

    public static let distributedLockLost = MetricFamily(
        "lockproof_distributed_lock_lost_total", .counter,
        help: "Distributed locks lost while held: the lease expired, or a stale fencing token was refused.",
        labels: [caseLabel])

    // Connection pools (workload.connections).
    public static let poolKinds = PoolKind.allCases.map(\.rawValue)

    public static let poolWait = MetricFamily(
        "lockproof_pool_wait_seconds", .histogram,
        help: "Time a virtual user waited to borrow a pooled connection (workload.connections), by pool (postgres, redis), in seconds.",
        labels: [MetricLabel(name: "pool", values: poolKinds)], buckets: secondsBuckets)

    // The HTTP API of `lockproof serve --api-address` (RED: rate, errors by status class, duration).
    public static let httpRoutes = APIRoute.labelValues
    public static let httpStatusClasses = ["2xx", "4xx", "5xx"]
    static let routeLabel = MetricLabel(name: "route", values: httpRoutes)
    static let statusClassLabel = MetricLabel(name: "status_class", values: httpStatusClasses)

    public static let httpRequests = MetricFamily(
        "lockproof_http_requests_total", .counter,
        help: "HTTP API requests answered, by route (unmatched = no route) and status class.",
        labels: [routeLabel, statusClassLabel])

    public static let httpRequestDuration = MetricFamily(
        "lockproof_http_request_duration_seconds", .histogram,
        help: "Time from a request's arrival in full to its answer (queue wait for a worker included), by route and status class, in seconds.",
        labels: [routeLabel, statusClassLabel], buckets: secondsBuckets)

    public static let httpRateLimited = MetricFamily(
        "lockproof_http_rate_limited_total", .counter,
        help: "HTTP API requests refused with 429 by the per-user rate limit (--rate-limit), by route.",
        labels: [MetricLabel(name: "route", values: APIRoute.allCases.filter { $0.rateLimited }.map(\.label))])

    // The load side of a run through a target (`lockproof run|verify --target`, issue 18): what
    // LockProof's own HTTP client sent and how each request ended, next to the service's
    // lockproof_http_* of its own. `status` is the history outcome of the request (ok, fail,
    // unknown), not the HTTP code: the target file maps codes to outcomes, and the service's own
    // metrics carry its status classes.
    public static let targetOperations = OperationName.allCases.map(\.rawValue)
    public static let targetStatuses = ["ok", "fail", "unknown"]
    static let targetOperationLabel = MetricLabel(name: "operation", values: targetOperations)

    public static let targetRequests = MetricFamily(
        "lockproof_target_requests_total", .counter,
        help: "Requests LockProof's client sent to a target (black-box run), by operation and history outcome (ok, fail = refused or not sent, unknown = may have happened).",
        labels: [targetOperationLabel, MetricLabel(name: "status", values: targetStatuses)])

    public static let targetRequestDuration = MetricFamily(
        "lockproof_target_request_duration_seconds", .histogram,
        help: "Time LockProof's client spent on one request to a target (connect, send, whole response), by operation, in seconds.",
        labels: [targetOperationLabel], buckets: secondsBuckets)

    public static let buildInfo = MetricFamily(
        "lockproof_build_info", .gauge,
        help: "Always 1; the version label says which LockProof is running.",
        labels: [MetricLabel(name: "version", values: [LockProofBuild.version])])

    /// Every family, in the order of Dashboards/metric-catalog.txt.
    public static let all: [MetricFamily] = [
        operations, operationDuration, retryAttempts, retryExhausted, retryCalls, optimisticConflicts, lockWait,
        lockHeld, lockAcquireFailures, deadlocks, serializationFailures, uniqueViolations, compensations, compensationsPending,
        circuitBreakerState, circuitBreakerOpenSeconds, distributedLockLost, poolWait, httpRequests, httpRequestDuration,
        httpRateLimited, targetRequests, targetRequestDuration, buildInfo,
    ]
}
