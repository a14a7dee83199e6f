import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofPostgres
import LockProofRedis
import LockProofTestSupport
import XCTest

/// The values on /metrics, scraped over HTTP, are what the real core did on the real servers.
final class MetricsValuesTests: XCTestCase {
    private var metrics: LockProofMetrics!
    private var endpoint: MetricsEndpoint!
    private var port = 0
    private var db: PostgresConnection!

    override func setUpWithError() throws {
        try TestServers.reset()
        db = try TestServers.database()
        metrics = LockProofMetrics()
        (endpoint, port) = try startEndpoint(metrics)
    }

    override func tearDown() {
        endpoint?.stop()
    }

    func testThreeOptimisticConflictsAreThreeRetryAttempts() throws {
        let probe = Probe(caseName: CaseName.chargeBalance.rawValue, sink: metrics)
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: 0, maxDelay: 0, jitter: false)
        let attempts = try withOptimisticRetry(policy, probe: probe) { attempt in
            if attempt <= 3 { throw OptimisticConflict(entity: "user", id: 1) }
            return attempt
        }
        XCTAssertEqual(attempts, 4)

        let exposition = try scrape(port: port)
        let charge = ["case": "charge-balance"]
        XCTAssertEqual(exposition.value("lockproof_retry_attempts_total", charge), 3)
        XCTAssertEqual(exposition.value("lockproof_optimistic_conflicts_total", ["case": "charge-balance", "entity": "user"]), 3)
        XCTAssertEqual(
            exposition.value("lockproof_retry_calls_total", ["case": "charge-balance", "kind": "successful_with_retry"]), 1)
        XCTAssertEqual(exposition.value("lockproof_retry_exhausted_total", charge), 0)
        XCTAssertEqual(exposition.samples(named: "lockproof_retry_attempts_total").map(\.value).reduce(0, +), 3)
    }

    /// A real spare redis-server stops: the breaker opens, and the time it spends open grows on
    /// /metrics while it stays open (not only once it closes); once Redis is back and the probe
    /// closes it, the counter stops, at the breaker's own measure of the outage.
    func testTheTimeTheBreakerSpendsOpenGrowsWhileItIsOpenAndStopsWhenItCloses() throws {
        let spare = SpareRedis()
        try spare.start()
        defer { spare.stop() }
        let breaker = CircuitBreaker(options: CircuitBreakerOptions(failureThreshold: 2, coolDownSeconds: 0.3))
        let locks = DistributedLockClient(
            redis: try RedisConnection(endpoint: RedisEndpoint(port: spare.port), commandTimeout: 1), breaker: breaker)
        let probe = Probe(caseName: CaseName.chargeBalance.rawValue, sink: metrics)
        let options = DistributedLockOptions(leaseMilliseconds: 2_000, waitMilliseconds: 1_000, renewLease: false)
        let port = self.port
        let openSeconds = { try XCTUnwrap(try scrape(port: port).value("lockproof_circuit_breaker_open_seconds_total", ["name": "redis"])) }

        XCTAssertNotNil(try locks.withLockOrFallback("test:breaker-time", options: options, probe: probe) { $0 })
        XCTAssertEqual(try openSeconds(), 0, "closed so far")
        spare.stop()
        for _ in 0..<2 { XCTAssertNil(try locks.withLockOrFallback("test:breaker-time", options: options, probe: probe) { $0 }) }
        XCTAssertEqual(breaker.state, .open)
        let whileOpen = try openSeconds()
        LockProofLocking.sleep(seconds: 0.2)
        let later = try openSeconds()
        XCTAssertGreaterThanOrEqual(later - whileOpen, 0.19, "it grows while the breaker is open")

        try spare.start()
        LockProofLocking.sleep(seconds: 0.35)
        XCTAssertNotNil(try locks.withLockOrFallback("test:breaker-time", options: options, probe: probe) { $0 }, "the probe took the lock")
        XCTAssertEqual(breaker.state, .closed)
        let closed = try openSeconds()
        LockProofLocking.sleep(seconds: 0.1)
        XCTAssertEqual(try openSeconds(), closed, "it stops once the breaker closed")
        XCTAssertEqual(closed, breaker.openSeconds, accuracy: 0.1, "the breaker's own measure of the outage")
    }

    func testTheBreakerStateAndAFencedRefusalReachTheMetrics() throws {
        let userId = try SeedData(db: db).users(count: 1, balance: 0)[0]
        var settings = CommerceSettings()
        settings.lock = DistributedLockOptions(leaseMilliseconds: 1_000, waitMilliseconds: 1_000, renewLease: false)
        let client = try TestServers.client(events: metrics, settings: settings)
        _ = try ChargeBalance(client: client, strategy: .redisLockFenced).charge(userId: userId, amount: 1)
        // The fencing counter went backwards (what a failover can do): the next write is refused.
        try db.query("UPDATE users SET fence_token = fence_token + 100 WHERE id = $1", [userId])
        XCTAssertThrowsError(try ChargeBalance(client: client, strategy: .redisLockFenced).charge(userId: userId, amount: 1))
        Probe(caseName: CaseName.chargeBalance.rawValue, sink: metrics).record(.circuitBreaker(.open))

        let exposition = try scrape(port: port)
        XCTAssertEqual(exposition.value("lockproof_distributed_lock_lost_total", ["case": "charge-balance"]), 1)
        XCTAssertEqual(exposition.value("lockproof_circuit_breaker_state", ["name": "redis", "state": "open"]), 1)
        XCTAssertEqual(exposition.value("lockproof_circuit_breaker_state", ["name": "redis", "state": "closed"]), 0)
    }

    func testRetriesRunningOutAreCountedAsExhausted() throws {
        let probe = Probe(caseName: CaseName.cartQuantity.rawValue, sink: metrics)
        let policy = RetryPolicy(maxAttempts: 3, baseDelay: 0, maxDelay: 0, jitter: false)
        XCTAssertThrowsError(
            try withOptimisticRetry(policy, probe: probe) { _ -> Int in throw OptimisticConflict(entity: "cart_item", id: 7) }
        ) { XCTAssertTrue($0 is RetryExhausted, "\($0)") }

        let exposition = try scrape(port: port)
        XCTAssertEqual(exposition.value("lockproof_retry_exhausted_total", ["case": "cart-quantity"]), 1)
        XCTAssertEqual(exposition.value("lockproof_retry_attempts_total", ["case": "cart-quantity"]), 2)
        XCTAssertEqual(
            exposition.value("lockproof_retry_calls_total", ["case": "cart-quantity", "kind": "failed_with_retry"]), 1)
        XCTAssertEqual(
            exposition.value("lockproof_optimistic_conflicts_total", ["case": "cart-quantity", "entity": "cart_item"]), 3)
    }

    func testARealDeadlockIsCountedOnce() throws {
        let products = try SeedData(db: db).products(count: 2, price: 1, stock: 1)
        let metrics = self.metrics!
        // Both transactions hold their first row before either asks for the other's: a certain cycle.
        let bothHoldTheirFirstRow = StartBarrier(parties: 2)
        let results = try runConcurrently(clients: 2, timeout: 60, setup: { _ in try TestServers.database() }) { index, db in
            let probe = Probe(caseName: CaseName.createOrder.rawValue, sink: metrics)
            let (first, second) = index == 0 ? (products[0], products[1]) : (products[1], products[0])
            return try transaction(db, probe: probe) { db -> Bool in
                try lockRowsForUpdate(db, table: .products, ids: [first], probe: probe)
                bothHoldTheirFirstRow.arriveAndWait()
                try lockRowsForUpdate(db, table: .products, ids: [second], probe: probe)
                return true
            }
        }
        let deadlocked = results.compactMap { $0.error as? PostgresError }.filter { $0.kind == .deadlock }
        XCTAssertEqual(deadlocked.count, 1, "PostgreSQL picks exactly one victim: \(results)")
        XCTAssertEqual(results.compactMap(\.value).count, 1, "the other transaction completes")

        let exposition = try scrape(port: port)
        XCTAssertEqual(exposition.value("lockproof_db_deadlocks_total", ["case": "create-order"]), 1)
        XCTAssertEqual(exposition.samples(named: "lockproof_db_deadlocks_total").map(\.value).reduce(0, +), 1)
        // Two first rows and the survivor's second: the victim's second wait ended in the deadlock.
        XCTAssertEqual(exposition.value("lockproof_lock_wait_seconds_count", ["case": "create-order", "lock": "row"]), 3)
    }

    func testADuplicateCouponIsOneUniqueViolationOnTheUserCouponConstraint() throws {
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        let coupon = try SeedData(db: db).coupon(totalQuantity: 10)
        let issue = IssueCoupon(client: try TestServers.client(events: metrics), strategy: .pessimistic)
        _ = try issue.issue(couponId: coupon, userId: user)
        XCTAssertThrowsError(try issue.issue(couponId: coupon, userId: user)) { error in
            XCTAssertEqual(
                error as? DomainError, .alreadyIssued(userId: user, couponId: coupon, detectedBy: .uniqueConstraint))
        }

        let exposition = try scrape(port: port)
        XCTAssertEqual(
            exposition.value(
                "lockproof_db_unique_violations_total",
                ["case": "issue-coupon", "constraint": "user_coupons_user_coupon_unique"]), 1)
        XCTAssertEqual(exposition.samples(named: "lockproof_db_unique_violations_total").map(\.value).reduce(0, +), 1)
        XCTAssertEqual(exposition.value("lockproof_lock_wait_seconds_count", ["case": "issue-coupon", "lock": "row"]), 2)
    }

    func testAFailingGatewayIsOneSucceededCompensation() throws {
        let seed = SeedData(db: db)
        let user = try seed.users(count: 1, balance: 1_000)[0]
        let product = try seed.products(count: 1, price: 100, stock: 10)[0]
        let client = try TestServers.client(
            events: metrics, gateway: SimulatedPaymentGateway(failureRate: 1, seed: 42))
        let order = try CreateOrder(client: client).create(
            userId: user, items: [OrderItemRequest(productId: product, quantity: 2)])
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: order.orderId)) { error in
            guard case .paymentDeclined = error as? DomainError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), 1_000, "compensated")

        try CompensationsPendingMonitor.refresh(metrics: metrics, database: db)
        let exposition = try scrape(port: port)
        XCTAssertEqual(exposition.value("lockproof_compensations_total", ["outcome": "succeeded"]), 1)
        XCTAssertEqual(exposition.value("lockproof_compensations_total", ["outcome": "failed"]), 0)
        XCTAssertEqual(exposition.value("lockproof_compensations_pending"), 0)
        XCTAssertEqual(exposition.value("lockproof_lock_wait_seconds_count", ["case": "process-payment", "lock": "redis"]), 1)
    }

    func testAFailedCompensationIsCountedAndStaysPendingInTheGauge() throws {
        let seed = SeedData(db: db)
        let user = try seed.users(count: 1, balance: 1_000)[0]
        let product = try seed.products(count: 1, price: 100, stock: 10)[0]
        let client = try TestServers.client(
            events: metrics, gateway: SimulatedPaymentGateway(failureRate: 1, seed: 42))
        client.faults.beforeCompensationCommit = { _ in throw InjectedFault() }
        let order = try CreateOrder(client: client).create(
            userId: user, items: [OrderItemRequest(productId: product, quantity: 1)])
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: order.orderId))

        XCTAssertEqual(try CompensationsPendingMonitor.refresh(metrics: metrics, database: db), 1)
        let exposition = try scrape(port: port)
        XCTAssertEqual(exposition.value("lockproof_compensations_total", ["outcome": "failed"]), 1)
        XCTAssertEqual(exposition.value("lockproof_compensations_total", ["outcome": "succeeded"]), 0)
        XCTAssertEqual(exposition.value("lockproof_compensations_pending"), 1)

        // Repaired: the gauge goes back to 0.
        client.faults.beforeCompensationCommit = nil
        XCTAssertEqual(try Compensation.retryPending(client: client), 1)
        XCTAssertEqual(try CompensationsPendingMonitor.refresh(metrics: metrics, database: db), 0)
        let repaired = try scrape(port: port)
        XCTAssertEqual(repaired.value("lockproof_compensations_pending"), 0)
        XCTAssertEqual(repaired.value("lockproof_compensations_total", ["outcome": "succeeded"]), 1)
    }

    func testThePendingMonitorThreadKeepsTheGaugeUpToDate() throws {
        let seed = SeedData(db: db)
        let user = try seed.users(count: 1, balance: 1_000)[0]
        let product = try seed.products(count: 1, price: 100, stock: 10)[0]
        let client = try TestServers.client(gateway: SimulatedPaymentGateway(failureRate: 1, seed: 7))
        client.faults.beforeCompensationCommit = { _ in throw InjectedFault() }
        let order = try CreateOrder(client: client).create(
            userId: user, items: [OrderItemRequest(productId: product, quantity: 1)])
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: order.orderId))

        let monitor = try CompensationsPendingMonitor(
            metrics: metrics, databaseURL: TestServers.configuration.databaseURL, intervalSeconds: 0.05)
        monitor.start()
        defer { monitor.stop() }
        // Waits for the monitor's first poll (a hang guard, not a timed assertion).
        let deadline = Date(timeIntervalSinceNow: 30)
        while monitor.lastPendingCount == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(monitor.lastPendingCount, 1)
        XCTAssertEqual(monitor.health, .ok)
        XCTAssertEqual(try scrape(port: port).value("lockproof_compensations_pending"), 1)
    }
}

struct InjectedFault: Error, CustomStringConvertible {
    var description: String { "injected fault before the compensation commits" }
}
