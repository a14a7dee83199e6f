import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import Prometheus
import Synchronization

/// The Prometheus metrics of one LockProof process, as declared in `MetricCatalog`.
///
/// It is the `EventSink` the core records into, from many client threads at once. Every series
/// is created up front, so recording an event is one dictionary lookup of the case name and an
/// atomic add (counters) or a short locked update (histograms); the registry is never consulted
/// on the hot path.
public final class LockProofMetrics: EventSink, Sendable {
    public let registry: PrometheusCollectorRegistry
    /// False turns every `record` and `recordOperation` into an immediate return, so that a
    /// benchmark can measure what instrumentation costs. The series are still exported (at 0).
    public let instrumentationEnabled: Bool

    private let seriesByCase: [String: CaseSeries]
    private let compensationsByOutcome: (succeeded: Counter, failed: Counter)
    private let compensationsPending: Gauge
    private let circuitBreakerGauges: [CircuitBreakerState: Gauge]
    private let circuitBreakerOpenTime: BreakerOpenTime
    private let poolWaits: [PoolKind: ValueHistogram]
    /// By route label, then status class.
    private let httpSeries: [String: [String: (requests: Counter, duration: ValueHistogram)]]
    private let httpRateLimitedByRoute: [String: Counter]
    /// By operation: the counter of each status, and the duration.
    private let targetSeries: [String: (requests: [String: Counter], duration: ValueHistogram)]

    public init(instrumentationEnabled: Bool = true) {
        self.instrumentationEnabled = instrumentationEnabled
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let tables = SeriesTables(registry: registry)

        var seriesByCase: [String: CaseSeries] = [:]
        for caseName in CaseName.allCases {
            seriesByCase[caseName.rawValue] = CaseSeries(caseName: caseName, tables: tables)
        }
        self.seriesByCase = seriesByCase
        compensationsByOutcome = (
            tables.counter(MetricCatalog.compensations, ["succeeded"]),
            tables.counter(MetricCatalog.compensations, ["failed"])
        )
        compensationsPending = tables.gauge(MetricCatalog.compensationsPending, [])
        var breakerGauges: [CircuitBreakerState: Gauge] = [:]
        for state in CircuitBreakerState.allCases {
            breakerGauges[state] = tables.gauge(MetricCatalog.circuitBreakerState, ["redis", state.rawValue])
        }
        circuitBreakerGauges = breakerGauges
        circuitBreakerOpenTime = BreakerOpenTime(counter: tables.counter(MetricCatalog.circuitBreakerOpenSeconds, ["redis"]))
        poolWaits = Dictionary(uniqueKeysWithValues: PoolKind.allCases.map { ($0, tables.histogram(MetricCatalog.poolWait, [$0.rawValue])) })
        var http: [String: [String: (requests: Counter, duration: ValueHistogram)]] = [:]
        for route in MetricCatalog.httpRoutes {
            for statusClass in MetricCatalog.httpStatusClasses {
                http[route, default: [:]][statusClass] = (
                    tables.counter(MetricCatalog.httpRequests, [route, statusClass]),
                    tables.histogram(MetricCatalog.httpRequestDuration, [route, statusClass])
                )
            }
        }
        httpSeries = http
        httpRateLimitedByRoute = Dictionary(
            uniqueKeysWithValues: MetricCatalog.httpRateLimited.series.map { ($0[0], tables.counter(MetricCatalog.httpRateLimited, $0)) })
        var target: [String: (requests: [String: Counter], duration: ValueHistogram)] = [:]
        for operation in MetricCatalog.targetOperations {
            let requests = Dictionary(
                uniqueKeysWithValues: MetricCatalog.targetStatuses.map { ($0, tables.counter(MetricCatalog.targetRequests, [operation, $0])) })
            target[operation] = (requests, tables.histogram(MetricCatalog.targetRequestDuration, [operation]))
        }
        targetSeries = target
        tables.gauge(MetricCatalog.buildInfo, [LockProofBuild.version]).set(to: 1)
        tables.createRemaining()
        setCircuitBreaker(state: .closed)
    }

    /// What to hand the core as its `EventSink`: this, or a sink that drops everything.
    public var eventSink: any EventSink { instrumentationEnabled ? self : NoEventSink() }

    // MARK: Recording

    public func record(_ event: LockProofEvent, caseName: String) {
        guard instrumentationEnabled else { return }
        if case .compensation(let succeeded) = event {
            (succeeded ? compensationsByOutcome.succeeded : compensationsByOutcome.failed).increment()
            return
        }
        if case .poolWaited(let pool, let seconds, _) = event {
            poolWaits[pool]?.record(max(0, seconds))
            return
        }
        if case .circuitBreaker(let state) = event {
            setCircuitBreaker(state: state)
            return
        }
        // A case name outside `CaseName` has no series; the core only uses `CaseName` raw values.
        guard let series = seriesByCase[caseName] else { return }
        switch event {
        case .lockWaited(let lock, let seconds):
            series.lockWait[lock]?.record(max(0, seconds))
        case .lockHeld(let lock, let seconds):
            series.lockHeld[lock]?.record(max(0, seconds))
        case .lockAcquireFailed(let lock, let reason):
            series.lockAcquireFailures[LockFailureKey(lock: lock, reason: reason)]?.increment()
        case .retryAttempt:
            series.retryAttempts.increment()
        case .retryExhausted:
            series.retryExhausted.increment()
        case .retryCall(let kind):
            series.retryCalls[kind]?.increment()
        case .optimisticConflict(let entity):
            (series.optimisticConflicts[entity] ?? series.optimisticConflicts[MetricCatalog.otherValue])?.increment()
        case .databaseError(let kind, let constraint):
            switch kind {
            case .deadlock: series.deadlocks.increment()
            case .serializationFailure: series.serializationFailures.increment()
            case .uniqueViolation:
                let known = constraint.flatMap { series.uniqueViolations[$0] }
                (known ?? series.uniqueViolations[MetricCatalog.otherValue])?.increment()
            default: break
            }
        case .distributedLockLost, .fencedWriteRefused:
            series.distributedLockLost.increment()
        case .redisLockBypassed:
            break  // the breaker's state gauge says so; bypasses are counted in the run's summary
        case .compensation, .circuitBreaker, .poolWaited:
            break  // handled above: they carry no case label
        case .lockAcquired, .lockReleased:
            break  // a run's history records the holds (the lock-exclusivity checker); no series
        }
    }

    /// Counts one finished operation and observes its duration. `strategy` is the raw value of the
    /// case's strategy enum; an unknown one is not recorded.
    public func recordOperation(case caseName: CaseName, strategy: String, outcome: OperationOutcome, seconds: Double) {
        guard instrumentationEnabled, let operation = seriesByCase[caseName.rawValue]?.operations[strategy] else { return }
        operation.outcomes[outcome]?.increment()
        operation.duration.record(seconds.isFinite ? max(0, seconds) : 0)
    }

    public func recordOperation<Strategy: RawRepresentable>(
        case caseName: CaseName, strategy: Strategy, outcome: OperationOutcome, seconds: Double
    ) where Strategy.RawValue == String {
        recordOperation(case: caseName, strategy: strategy.rawValue, outcome: outcome, seconds: seconds)
    }

    /// Counts one answered HTTP API request and observes its duration. `route` is an
    /// `APIRoute.label` or `unmatched`; statuses outside 2xx/4xx/5xx are not recorded.
    public func recordHTTPRequest(route: String, status: Int, seconds: Double) {
        guard instrumentationEnabled else { return }
        let statusClass = "\(status / 100)xx"
        guard let series = httpSeries[route]?[statusClass] else { return }
        series.requests.increment()
        series.duration.record(seconds.isFinite ? max(0, seconds) : 0)
    }

    /// Counts one request refused by the per-user rate limit.
    public func recordRateLimited(route: String) {
        guard instrumentationEnabled else { return }
        httpRateLimitedByRoute[route]?.increment()
    }

    /// Counts one request LockProof's client sent to a target and observes its duration.
    /// `operation` is an `OperationName` raw value, `status` the history outcome (`ok`, `fail`,
    /// `unknown`); anything else is not recorded.
    public func recordTargetRequest(operation: String, status: String, seconds: Double) {
        guard instrumentationEnabled, let series = targetSeries[operation], let counter = series.requests[status] else { return }
        counter.increment()
        series.duration.record(seconds.isFinite ? max(0, seconds) : 0)
    }

    public func setCompensationsPending(_ count: Int) {
        compensationsPending.set(to: Double(max(0, count)))
    }

    /// Sets the current state's series to 1 and the others to 0. The others are cleared first, so
    /// a scrape in between sees no state at 1 for an instant rather than two.
    public func setCircuitBreaker(state: CircuitBreakerState) {
        circuitBreakerOpenTime.entered(state)
        for (other, gauge) in circuitBreakerGauges where other != state { gauge.set(to: 0) }
        circuitBreakerGauges[state]?.set(to: 1)
    }

    /// Adds a finished spell of `seconds` with the breaker open (to fill every series).
    func recordCircuitBreakerOpen(seconds: Double) {
        circuitBreakerOpenTime.add(seconds: seconds)
    }

    // MARK: Rendering

    /// The Prometheus text exposition (format 0.0.4) of every series.
    public func render() -> String { String(decoding: renderBytes(), as: UTF8.self) }

    public func renderBytes() -> [UInt8] {
        // A local buffer rather than the registry's shared one: concurrent scrapes do not queue
        // behind each other's rendering.
        // A breaker still open is counted up to now: the counter grows during the outage, not only
        // when it ends.
        circuitBreakerOpenTime.flush()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(96 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// Accumulates the time the breaker is not closed into `lockproof_circuit_breaker_open_seconds_total`:
/// added when it closes, and at every render for a spell still going on.
final class BreakerOpenTime: Sendable {
    private let counter: Counter
    /// Start of the part of the current spell not yet added; nil while closed.
    private let uncountedSince = Mutex<Double?>(nil)

    init(counter: Counter) { self.counter = counter }

    func entered(_ state: CircuitBreakerState) {
        uncountedSince.withLock { uncountedSince in
            let now = monotonicSeconds()
            if state == .closed {
                if let since = uncountedSince { counter.increment(by: max(0, now - since)) }
                uncountedSince = nil
            } else if uncountedSince == nil {
                uncountedSince = now
            }
        }
    }

    func add(seconds: Double) {
        counter.increment(by: max(0, seconds))
    }

    func flush() {
        uncountedSince.withLock { uncountedSince in
            guard let since = uncountedSince else { return }
            let now = monotonicSeconds()
            counter.increment(by: max(0, now - since))
            uncountedSince = now
        }
    }
}

struct LockFailureKey: Hashable, Sendable {
    let lock: LockKind
    let reason: LockFailureReason
}

/// The series of one operation type (case and strategy). A class, like `CaseSeries`, so that
/// looking one up retains one reference instead of copying every field.
final class OperationSeries: Sendable {
    let outcomes: [OperationOutcome: Counter]
    let duration: ValueHistogram

    init(outcomes: [OperationOutcome: Counter], duration: ValueHistogram) {
        self.outcomes = outcomes
        self.duration = duration
    }
}

/// Every series labelled with one case, looked up once at start. A class: a struct this size would
/// be copied out of the dictionary on every event, retaining and releasing each of its fields.
final class CaseSeries: Sendable {
    let operations: [String: OperationSeries]
    let retryAttempts: Counter
    let retryExhausted: Counter
    let retryCalls: [RetryCallKind: Counter]
    let optimisticConflicts: [String: Counter]
    let lockWait: [LockKind: ValueHistogram]
    let lockHeld: [LockKind: ValueHistogram]
    let lockAcquireFailures: [LockFailureKey: Counter]
    let deadlocks: Counter
    let serializationFailures: Counter
    let uniqueViolations: [String: Counter]
    let distributedLockLost: Counter

    init(caseName: CaseName, tables: SeriesTables) {
        let name = caseName.rawValue
        var operations: [String: OperationSeries] = [:]
        for strategy in MetricCatalog.strategies(of: caseName) {
            var outcomes: [OperationOutcome: Counter] = [:]
            for outcome in OperationOutcome.allCases {
                outcomes[outcome] = tables.counter(MetricCatalog.operations, [name, strategy, outcome.rawValue])
            }
            operations[strategy] = OperationSeries(
                outcomes: outcomes, duration: tables.histogram(MetricCatalog.operationDuration, [name, strategy]))
        }
        self.operations = operations
        retryAttempts = tables.counter(MetricCatalog.retryAttempts, [name])
        retryExhausted = tables.counter(MetricCatalog.retryExhausted, [name])
        retryCalls = Dictionary(
            uniqueKeysWithValues: RetryCallKind.allCases.map {
                ($0, tables.counter(MetricCatalog.retryCalls, [name, $0.rawValue]))
            })
        optimisticConflicts = Dictionary(
            uniqueKeysWithValues: MetricCatalog.conflictEntities.map {
                ($0, tables.counter(MetricCatalog.optimisticConflicts, [name, $0]))
            })
        lockWait = Dictionary(
            uniqueKeysWithValues: LockKind.allCases.map {
                ($0, tables.histogram(MetricCatalog.lockWait, [name, $0.rawValue]))
            })
        lockHeld = Dictionary(
            uniqueKeysWithValues: LockKind.allCases.map {
                ($0, tables.histogram(MetricCatalog.lockHeld, [name, $0.rawValue]))
            })
        var failures: [LockFailureKey: Counter] = [:]
        for lock in LockKind.allCases {
            for reason in LockFailureReason.allCases {
                failures[LockFailureKey(lock: lock, reason: reason)] = tables.counter(
                    MetricCatalog.lockAcquireFailures, [name, lock.rawValue, reason.rawValue])
            }
        }
        lockAcquireFailures = failures
        deadlocks = tables.counter(MetricCatalog.deadlocks, [name])
        serializationFailures = tables.counter(MetricCatalog.serializationFailures, [name])
        uniqueViolations = Dictionary(
            uniqueKeysWithValues: MetricCatalog.uniqueConstraints.map {
                ($0, tables.counter(MetricCatalog.uniqueViolations, [name, $0]))
            })
        distributedLockLost = tables.counter(MetricCatalog.distributedLockLost, [name])
    }
}

/// Registers series strictly from the catalog: asking for a family or a label combination the
/// catalog does not declare is a programming error caught at start, not a silent new series.
final class SeriesTables {
    private let registry: PrometheusCollectorRegistry
    private var created: Set<String> = []

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func counter(_ family: MetricFamily, _ values: [String]) -> Counter {
        precondition(family.kind == .counter, "\(family.name) is not a counter")
        return register(family, values) { registry.makeCounter(descriptor: descriptor(family), labels: $0) }
    }

    func gauge(_ family: MetricFamily, _ values: [String]) -> Gauge {
        precondition(family.kind == .gauge, "\(family.name) is not a gauge")
        if family.labels.isEmpty { return register(family, values) { _ in registry.makeGauge(descriptor: descriptor(family)) } }
        return register(family, values) { registry.makeGauge(descriptor: descriptor(family), labels: $0) }
    }

    func histogram(_ family: MetricFamily, _ values: [String]) -> ValueHistogram {
        precondition(family.kind == .histogram, "\(family.name) is not a histogram")
        return register(family, values) {
            registry.makeValueHistogram(descriptor: descriptor(family), labels: $0, buckets: family.buckets)
        }
    }

    /// Registers every declared combination not asked for yet, so that all of them are exported.
    func createRemaining() {
        for family in MetricCatalog.all {
            for values in family.series where !created.contains(key(family, values)) {
                switch family.kind {
                case .counter: _ = counter(family, values)
                case .gauge: _ = gauge(family, values)
                case .histogram: _ = histogram(family, values)
                }
            }
        }
    }

    private func register<Metric>(_ family: MetricFamily, _ values: [String], _ make: ([(String, String)]) -> Metric) -> Metric {
        precondition(
            family.series.contains(values), "\(family.name)\(values) is not a label combination the catalog declares")
        created.insert(key(family, values))
        // Labels always in the catalog's order: the registry tells series apart by the ordered list.
        return make(Array(zip(family.labelNames, values)))
    }

    private func descriptor(_ family: MetricFamily) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help)
    }

    private func key(_ family: MetricFamily, _ values: [String]) -> String {
        family.name + "\u{1F}" + values.joined(separator: "\u{1F}")
    }
}
