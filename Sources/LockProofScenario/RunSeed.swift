import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// What every run starts from: a clean schema, no lock keys, the scenario's seed data, and the
/// commerce settings its workload asks for.
extension ScenarioRunner {
    /// `resetAndSeed` within the scenario's timeout (a preparation that hangs is cancelled).
    func prepareData(_ scenario: Scenario) throws -> InitialState {
        let db = try configuration.openDatabase()
        let deadline = PreparationDeadline(
            seconds: scenario.workload.timeoutSeconds, backendPID: db.backendPID, configuration: configuration)
        let initial: InitialState
        let overrun = RunAborted(
            message: "\(scenario.name): emptying the tables and seeding did not finish within \(formatNumber(scenario.workload.timeoutSeconds)) s (workload.timeout)")
        do {
            initial = try resetAndSeed(scenario, db: db)
        } catch {
            guard deadline.finish() else { throw error }
            throw overrun
        }
        // Done, but after the deadline (between two of its cancels): still over the bound.
        if deadline.finish() { throw overrun }
        return initial
    }

    func commerceSettings(_ workload: WorkloadSpec) -> CommerceSettings {
        var settings = CommerceSettings()
        settings.processingDelaySeconds = workload.thinkMilliseconds / 1000
        if let attempts = workload.retryMaxAttempts {
            settings.retry = RetryPolicy(
                maxAttempts: attempts, baseDelay: settings.retry.baseDelay, maxDelay: settings.retry.maxDelay, jitter: true)
        }
        if let lease = workload.lockLeaseMilliseconds { settings.lock.leaseMilliseconds = lease }
        if let wait = workload.lockWaitMilliseconds { settings.lock.waitMilliseconds = wait }
        if let renew = workload.lockRenew { settings.lock.renewLease = renew }
        if let timeout = workload.rowLockTimeoutMilliseconds { settings.rowLockTimeoutMilliseconds = timeout }
        return settings
    }

    /// A clean schema, no lock keys, and the scenario's seed data: what every run starts from (the
    /// benchmark's pgbench ceiling starts from it too).
    public func resetAndSeed(_ scenario: Scenario, db: PostgresConnection) throws -> InitialState {
        try Schema.reset(db)
        try clearLockKeys()
        var breaker = CircuitBreakerOptions.standard
        if let threshold = scenario.workload.breakerFailureThreshold { breaker.failureThreshold = threshold }
        if let coolDown = scenario.workload.breakerCoolDownMilliseconds { breaker.coolDownSeconds = Double(coolDown) / 1000 }
        shared.breaker.reset(options: breaker)
        shared.holders.reset()
        return try seed(scenario, db: db)
    }

    /// Deletes the lock and fencing keys the cases use, and nothing else in the database.
    private func clearLockKeys() throws {
        let redis = try RedisConnection(endpoint: configuration.redis)
        for pattern in caseLockKeyPatterns + ["lockproof:fence:*"] {
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
        for caseName in scenario.cases {
            // A case's own rows (`CaseStorage.seed`), from its seed keys (the file's or their defaults).
            let storage = caseName.descriptor.storage
            var values = Dictionary(uniqueKeysWithValues: storage.seedKeys.map { ($0.name, $0.defaultValue) })
            values.merge(spec.caseValues) { _, given in given }
            try storage.seed(values, initial.users, db)
        }
        if spec.cartQuantity > 0 {
            try data.cartLines(users: initial.users, products: initial.products, quantity: spec.cartQuantity)
            initial.cartQuantity = spec.cartQuantity
        }
        if spec.orders > 0 {
            initial.orders = try data.pendingOrders(
                count: spec.orders, users: initial.users, products: initial.products, itemsPerOrder: spec.orderItems,
                quantity: spec.orderQuantity, price: spec.price)
        }
        return initial
    }
}

/// The simulated gateway's records, timed: the benchmark reports what the gateway adds to a
/// payment (the ceiling runs the strategy's statements, not the gateway's).
struct TimedGatewayRecords: GatewayRecords {
    let inner: any GatewayRecords
    let statistics: RunStatistics

    init(_ inner: any GatewayRecords, statistics: RunStatistics) {
        self.inner = inner
        self.statistics = statistics
    }

    func first(orderId: Int, amount: Int, _ answer: GatewayAnswer) throws -> GatewayAnswer {
        let started = monotonicSeconds()
        defer { statistics.observe(RunStatistics.gatewayRecordSeconds, seconds: monotonicSeconds() - started) }
        return try inner.first(orderId: orderId, amount: amount, answer)
    }
}
