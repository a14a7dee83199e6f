import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// What one scenario run produced.
public struct ScenarioResult: Sendable {
    public let scenario: Scenario
    public let history: [HistoryEntry]
    public let checks: [CheckResult]
    public let thresholds: [ThresholdResult]
    public let statistics: RunStatistics
    public let seconds: Double
    /// Set when the run itself broke (a hang, a lost server): the scenario fails.
    public let runError: String?
    /// What the end-of-run payment recovery did (payment scenarios only).
    public var recovery: RecoveryReport? = nil
    /// The Redis circuit breaker during the run.
    public var circuitBreaker: CircuitBreakerSummary? = nil

    /// Did any check catch a violation?
    public var violationCaught: Bool { checks.contains { !$0.passed } }

    /// A scenario passes when its checks and thresholds pass; a negative control passes when a
    /// check caught its violation.
    public var passed: Bool {
        guard runError == nil else { return false }
        switch scenario.expect {
        case .pass: return checks.allSatisfy(\.passed) && thresholds.allSatisfy(\.passed)
        case .violation: return violationCaught
        }
    }

    public func count(_ outcome: HistoryOutcome) -> Int { history.filter { $0.outcome == outcome }.count }
    public var throughput: Double { seconds > 0 ? Double(history.count) / seconds : 0 }
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

/// A run stopped before it could be judged.
public struct RunAborted: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Runs scenarios against real servers: a clean schema, the seed data, virtual users on their own
/// threads released at one barrier, a recorded history, then the checkers and thresholds.
public final class ScenarioRunner {
    public let configuration: ServerConfiguration
    public let shared: SharedServices
    /// Every event and operation also goes here (the Prometheus exporter), if set.
    public var forward: (any EventSink)?
    public var operationObserver: (@Sendable (CaseName, String, OperationOutcome, Double) -> Void)?
    public var progress: ProgressReporter

    public init(configuration: ServerConfiguration, shared: SharedServices, progress: ProgressReporter) {
        self.configuration = configuration
        self.shared = shared
        self.progress = progress
    }

    /// Fails fast, before anything runs, when a server cannot be reached.
    public static func checkReachable(_ configuration: ServerConfiguration) throws {
        do {
            _ = try configuration.openDatabase()
        } catch {
            throw RunAborted(message: "PostgreSQL is unreachable: \(error)")
        }
        do {
            let redis = try RedisConnection(endpoint: configuration.redis, commandTimeout: 2)
            _ = try redis.checked(["PING"])
        } catch {
            throw RunAborted(message: "Redis at \(configuration.redis) is unreachable: \(error)")
        }
    }

    public func run(_ scenario: Scenario) throws -> ScenarioResult {
        let db = try configuration.openDatabase()
        try Schema.reset(db)
        try clearLockKeys()
        shared.breaker.reset()
        let initial = try seed(scenario, db: db)

        let statistics = RunStatistics(forward: forward)
        let history = HistoryLog()
        let workload = scenario.workload
        let virtualUsers = workload.virtualUsers[0]
        let settings = commerceSettings(workload)
        let gateway = SimulatedPaymentGateway(
            latencySeconds: (workload.gatewayLatencyMilliseconds.lowerBound / 1000)...(workload.gatewayLatencyMilliseconds.upperBound / 1000),
            failureRate: workload.gatewayFailureRate, seed: workload.randomSeed,
            records: try DatabaseGatewayRecords(databaseURL: configuration.databaseURL))
        let barrier = StartBarrier(parties: virtualUsers + 1)
        let group = DispatchGroup()
        let clockStart = LockedValue(0.0)
        let setupErrors = LockedValue<[String]>([])
        let observer = operationObserver
        // Each operation reports under its own case and strategy (a mix has several).
        var labels = Dictionary(uniqueKeysWithValues: scenario.operations.map { ($0.name, ($0.caseName, $0.strategy)) })
        if labels["pay"] == nil { labels["pay"] = (.processPayment, "seed") }
        let operationLabels = labels
        let configuration = configuration
        let shared = shared
        let progress = progress

        for index in 0..<virtualUsers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                var user: VirtualUser?
                do {
                    let client = try CommerceClient(
                        configuration: configuration, shared: shared, events: statistics, settings: settings, gateway: gateway)
                    user = VirtualUser(index: index, scenario: scenario, initial: initial, client: client)
                } catch {
                    setupErrors.mutate { $0.append("client \(index): \(error)") }
                }
                barrier.arriveAndWait()
                guard var user else { return }
                let started = clockStart.value
                let clock = { monotonicSeconds() - started }
                let deadline = workload.durationSeconds.map { started + $0 }
                var iteration = 0
                while true {
                    if let iterations = workload.iterations, iteration >= iterations { break }
                    if let deadline, monotonicSeconds() >= deadline { break }
                    if setupErrors.value.count > 0 { break }
                    user.perform(iteration, clock: clock) { entry, outcome in
                        history.append(entry)
                        statistics.recordOperation(outcome: outcome, seconds: entry.seconds)
                        if entry.operation == "pay" && (entry.outcome == .ok || entry.reason == "payment_declined") {
                            statistics.countGatewayCall()
                        }
                        if let (caseName, strategy) = operationLabels[entry.operation] {
                            observer?(caseName, strategy, outcome, entry.seconds)
                        }
                        progress.operationFinished(failed: outcome == .error || outcome == .unknown)
                    }
                    iteration += 1
                }
            }
            thread.name = "lockproof-vu-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }

        let expected = workload.iterations.map { $0 * virtualUsers * (workload.payAfterCreate ? 2 : 1) }
        progress.begin(scenario: scenario.name, expectedOperations: expected, durationSeconds: workload.durationSeconds)
        clockStart.set(monotonicSeconds())
        barrier.arriveAndWait()
        let limit = (workload.durationSeconds ?? 0) + workload.timeoutSeconds
        let finished = group.wait(timeout: .now() + limit) == .success
        let seconds = monotonicSeconds() - clockStart.value
        progress.end()

        if !setupErrors.value.isEmpty {
            throw RunAborted(message: "\(scenario.name): could not start every client: \(setupErrors.value.first!)")
        }
        guard finished else {
            // Clients still running would disturb whatever runs next: stop here.
            throw RunAborted(
                message: "\(scenario.name): the run did not finish within \(Int(limit)) s (workload.timeout): a hang; stopping")
        }
        let breaker = CircuitBreakerSummary(shared.breaker)
        // Every interrupted payment is settled before the checkers look (as `lockproof recover`).
        var recovery: RecoveryReport?
        if scenario.caseName == .processPayment || scenario.workload.payAfterCreate {
            let client = try CommerceClient(configuration: configuration, shared: nil, events: statistics, gateway: gateway)
            recovery = try PaymentRecovery.run(client: client)
        }
        let entries = history.entries.sorted { ($0.start, $0.client) < ($1.start, $1.client) }
        let context = CheckContext(scenario: scenario, history: entries, initial: initial, db: db, statistics: statistics)
        let checks = try checkers(for: scenario).map { try $0.check(context) }
        if !scenario.runs("pay") {
            statistics.setGauge("lockproof_compensations_pending", 0)
        }
        let thresholds = scenario.thresholds.map { $0.evaluate(statistics, seconds: seconds) }
        return ScenarioResult(
            scenario: scenario, history: entries, checks: checks, thresholds: thresholds, statistics: statistics,
            seconds: seconds, runError: nil, recovery: recovery, circuitBreaker: breaker)
    }

    private func commerceSettings(_ workload: WorkloadSpec) -> CommerceSettings {
        var settings = CommerceSettings()
        settings.processingDelaySeconds = workload.thinkMilliseconds / 1000
        if let attempts = workload.retryMaxAttempts {
            settings.retry = RetryPolicy(
                maxAttempts: attempts, baseDelay: settings.retry.baseDelay, maxDelay: settings.retry.maxDelay, jitter: true)
        }
        if let lease = workload.lockLeaseMilliseconds { settings.lock.leaseMilliseconds = lease }
        if let wait = workload.lockWaitMilliseconds { settings.lock.waitMilliseconds = wait }
        if let timeout = workload.rowLockTimeoutMilliseconds { settings.rowLockTimeoutMilliseconds = timeout }
        return settings
    }

    /// Deletes the lock and fencing keys the cases use, and nothing else in the database.
    private func clearLockKeys() throws {
        let redis = try RedisConnection(endpoint: configuration.redis)
        for pattern in ["balance:user:*", "coupon:issue:*", "order:create:user:*", "lockproof:fence:*"] {
            var cursor = "0"
            repeat {
                let reply = try redis.checked(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])
                guard let parts = reply.array, parts.count == 2, let next = parts[0].text else { break }
                cursor = next
                let keys = parts[1].array?.compactMap(\.text) ?? []
                if !keys.isEmpty { try redis.checked(["DEL"] + keys) }
            } while cursor != "0"
        }
    }

    /// The seed data: users, products, one coupon, and PENDING orders, all with ledger openings.
    private func seed(_ scenario: Scenario, db: PostgresConnection) throws -> InitialState {
        let spec = scenario.seed
        let data = SeedData(db: db)
        var initial = InitialState()
        initial.users = try data.users(count: spec.users, balance: spec.balance)
        initial.products = try data.products(count: spec.products, price: spec.price, stock: spec.stock)
        initial.couponId = try data.coupon(totalQuantity: spec.couponQuantity)
        initial.couponTotal = spec.couponQuantity
        initial.balances = Dictionary(uniqueKeysWithValues: initial.users.map { ($0, spec.balance) })
        initial.stock = Dictionary(uniqueKeysWithValues: initial.products.map { ($0, spec.stock) })
        if spec.cartQuantity > 0 {
            try data.cartLines(users: initial.users, products: initial.products, quantity: spec.cartQuantity)
            initial.cartQuantity = spec.cartQuantity
        }
        if spec.orders > 0 {
            // Set-based, so that pools of tens of thousands of orders seed in a moment. Order n
            // (by id) belongs to user n mod users and holds products n … n + order_items − 1.
            initial.orders = try db.transaction { db in
                let made = try db.query(
                    """
                    WITH made AS (
                        INSERT INTO orders (user_id, status, total_amount)
                        SELECT ($1::bigint[])[((n - 1) % $2) + 1], 'PENDING', $3 FROM generate_series(1, $4) AS n
                        RETURNING id)
                    SELECT id FROM made ORDER BY id
                    """,
                    [postgresArray(initial.users), initial.users.count, spec.orderItems * spec.orderQuantity * spec.price, spec.orders])
                let ids = (0..<made.rowCount).map { made.int($0, 0)! }
                try db.query(
                    """
                    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
                    SELECT o.id, ($1::bigint[])[((o.n - 1 + k) % $2) + 1], $3, $4
                    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM orders WHERE id = ANY($5::bigint[])) AS o,
                         generate_series(0, $6 - 1) AS k
                    """,
                    [postgresArray(initial.products), initial.products.count, spec.orderQuantity, spec.price,
                     postgresArray(ids), spec.orderItems])
                return ids
            }
        }
        return initial
    }
}

/// The history, appended to from every client thread.
final class HistoryLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [HistoryEntry] = []
    func append(_ entry: HistoryEntry) {
        lock.lock()
        storage.append(entry)
        lock.unlock()
    }
    var entries: [HistoryEntry] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
    func set(_ value: T) { mutate { $0 = value } }
    func mutate(_ change: (inout T) -> Void) {
        lock.lock()
        change(&stored)
        lock.unlock()
    }
}
