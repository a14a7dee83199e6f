import LockProofCommerce
import LockProofLocking
import LockProofTestSupport
import XCTest

final class ProcessPaymentTests: CommerceTestCase {
    /// Balance 50,000 and ten concurrent payments of 10,000 (one order each).
    private func race(_ strategy: ProcessPaymentStrategy) throws
        -> (userId: Int, productId: Int, results: [Result<PaymentResult, any Error>])
    {
        let userId = try seed.users(count: 1, balance: 50_000)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 100)[0]
        let orders = try (0..<10).map { _ in try order(userId: userId, productId: productId, quantity: 10, unitPrice: 1_000) }
        let settings = Self.settings()
        let results = try runConcurrently(clients: 10, setup: { _ in try TestServers.client(settings: settings) }) {
            index, client in
            try ProcessPayment(client: client, strategy: strategy).pay(orderId: orders[index])
        }
        return (userId, productId, results)
    }

    func testExactlyFiveOfTenPaymentsSucceedAndNothingGoesNegative() throws {
        for strategy in [ProcessPaymentStrategy.seed, .pessimistic] {
            try TestServers.reset()
            let (userId, productId, results) = try race(strategy)
            XCTAssertEqual(results.filter { $0.value != nil }.count, 5, "\(strategy)")
            let refusals = results.filter { isDomainError($0.error) { if case .insufficientBalance = $0 { return true } else { return false } } }
            XCTAssertEqual(refusals.count, 5, "\(strategy): the rest are refused for insufficient balance")
            XCTAssertEqual(try balance(userId), 0)
            XCTAssertEqual(try ledgerSum(userId: userId), 0, "money is conserved in the ledger")
            XCTAssertEqual(try stock(productId), 50, "stock of five paid orders deducted")
            XCTAssertEqual(try scalar("SELECT count(*) FROM orders WHERE status = 'PAID'"), 5)
            XCTAssertEqual(try scalar("SELECT count(*) FROM orders WHERE status = 'PENDING'"), 5)
        }
    }

    func testNaivePaymentIsCaughtOverspending() throws {
        let (userId, _, results) = try race(.naive)
        let paid = results.filter { $0.value != nil }.count
        let charged = -(try scalar("SELECT COALESCE(sum(delta), 0)::bigint FROM balance_ledger WHERE reason = 'payment'"))
        XCTAssertGreaterThan(paid, 5, "without locks more payments pass the balance check than money allows")
        XCTAssertEqual(charged, paid * 10_000)
        XCTAssertNotEqual(try balance(userId), try ledgerSum(userId: userId), "money is not conserved")
    }

    func testGatewayFailureIsCompensatedExactly() throws {
        let userId = try seed.users(count: 1, balance: 100_000)[0]
        let products = try seed.products(count: 3, price: 700, stock: 40)
        let orders = try (0..<6).map { try order(userId: userId, productId: products[$0 % 3], quantity: 2, unitPrice: 700) }
        let gateway = SimulatedPaymentGateway(latencySeconds: 0...0.005, failureRate: 1, seed: 7)
        let results = try runConcurrently(
            clients: 6, setup: { _ in try TestServers.client(settings: Self.settings(), gateway: gateway) }
        ) { index, client in try ProcessPayment(client: client).pay(orderId: orders[index]) }
        XCTAssertTrue(results.allSatisfy { isDomainError($0.error) { if case .paymentDeclined = $0 { return true } else { return false } } })
        XCTAssertEqual(try balance(userId), 100_000, "balance restored exactly")
        XCTAssertEqual(try ledgerSum(userId: userId), 100_000)
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger WHERE reason = 'compensation'"), 6)
        for product in products { XCTAssertEqual(try stock(product), 40, "stock restored exactly") }
        XCTAssertEqual(try scalar("SELECT COALESCE(sum(delta), 0)::bigint FROM stock_ledger"), 120)
        XCTAssertEqual(try scalar("SELECT count(*) FROM orders WHERE status = 'PAYMENT_FAILED'"), 6)
        XCTAssertEqual(try scalar("SELECT count(*) FROM compensations WHERE status = 'succeeded'"), 6)
        XCTAssertEqual(gateway.calls, 6)
    }

    func testFailedCompensationIsRecordedDurablyAndRepairedLater() throws {
        let userId = try seed.users(count: 1, balance: 10_000)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 10)[0]
        let orderId = try order(userId: userId, productId: productId, quantity: 3, unitPrice: 1_000)
        let sink = RecordingEventSink()
        let client = try TestServers.client(events: sink, gateway: SimulatedPaymentGateway(failureRate: 1, seed: 1))
        struct DatabaseHiccup: Error {}
        client.faults.beforeCompensationCommit = { _ in throw DatabaseHiccup() }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            // The money was taken and not given back yet: unknown to the checkers, not a failure.
            XCTAssertTrue(($0 as? PaymentInterrupted)?.cause is DatabaseHiccup, "\($0)")
            XCTAssertEqual(OperationOutcome.classify($0), .unknown)
        }
        XCTAssertEqual(try balance(userId), 7_000, "the compensation did not happen…")
        XCTAssertEqual(try Compensation.pending(db: db), [orderId], "…but it is not lost")
        XCTAssertEqual(try scalar("SELECT attempts FROM compensations WHERE order_id = $1", [orderId]), 1)
        XCTAssertEqual(try db.query("SELECT last_error FROM compensations WHERE order_id = $1", [orderId]).string(0, 0)?.contains("DatabaseHiccup"), true)
        XCTAssertEqual(sink.count { $0 == .compensation(succeeded: false) }, 1)

        client.faults.beforeCompensationCommit = nil
        XCTAssertEqual(try Compensation.retryPending(client: client), 1)
        XCTAssertEqual(try balance(userId), 10_000)
        XCTAssertEqual(try stock(productId), 10)
        XCTAssertEqual(try ledgerSum(userId: userId), 10_000)
        XCTAssertEqual(try Compensation.pending(db: db), [])
        XCTAssertEqual(try Compensation.retryPending(client: client), 0, "repairing twice restores nothing twice")
        XCTAssertEqual(try balance(userId), 10_000)
    }

    /// The double-payment race: 10 clients pay one order at once. Every strategy but the negative
    /// control pays it once (the naive one too: its conditional status update refuses the losers).
    func testAnOrderIsPaidOnlyOnce() throws {
        // receipt-misread takes every approval for a decline: nobody pays.
        let controls: [ProcessPaymentStrategy] = [.noStatusGuard, .stockPerLine, .stockTakenTwice, .receiptMisread]
        for strategy in ProcessPaymentStrategy.allCases where !controls.contains(strategy) {
            try TestServers.reset()
            let (userId, productId, results) = try raceOnOneOrder(strategy, thinkSeconds: 0.002)
            XCTAssertEqual(results.filter { $0.value != nil }.count, 1, "\(strategy)")
            let refusals = results.filter { isDomainError($0.error) { if case .orderNotPayable = $0 { return true } else { return false } } }
            XCTAssertEqual(refusals.count, 9, "\(strategy): the others are refused as not payable")
            XCTAssertEqual(try balance(userId), 49_000, "\(strategy)")
            XCTAssertEqual(try stock(productId), 99, "\(strategy)")
        }
    }

    /// Its negative control: without the status guard, every client that read the order before the
    /// first payment committed deducts again. (A think time of 50 ms under the row locks keeps the
    /// first payment uncommitted while the others read the order.)
    func testWithoutTheStatusGuardRacingPaymentsOfOneOrderAllDeduct() throws {
        let (userId, productId, results) = try raceOnOneOrder(.noStatusGuard, thinkSeconds: 0.05)
        let paid = results.filter { $0.value != nil }.count
        XCTAssertGreaterThan(paid, 1, "more than one payment of one order passes the stale status check")
        XCTAssertEqual(try balance(userId), 50_000 - paid * 1_000, "each of them deducted")
        XCTAssertEqual(try stock(productId), 100 - paid)
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger WHERE reason = 'payment'"), paid)
        XCTAssertEqual(try scalar("SELECT count(*) FROM payment_intents"), 1, "the intent was written once: the stale check is the only guard left")
    }

    private func raceOnOneOrder(_ strategy: ProcessPaymentStrategy, thinkSeconds: Double) throws
        -> (userId: Int, productId: Int, results: [Result<PaymentResult, any Error>])
    {
        let userId = try seed.users(count: 1, balance: 50_000)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 100)[0]
        let orderId = try order(userId: userId, productId: productId, quantity: 1, unitPrice: 1_000)
        let settings = Self.settings(thinkSeconds: thinkSeconds)
        let results = try runConcurrently(clients: 10, setup: { _ in try TestServers.client(settings: settings) }) { _, client in
            try ProcessPayment(client: client, strategy: strategy).pay(orderId: orderId)
        }
        return (userId, productId, results)
    }

    /// The payment-unsettled control: each order PAID and charged once, its intent left open and
    /// dated a day ahead, which the end-of-run recovery (settling intents at least 0 s old) skips.
    func testReconciliationDeferredLeavesTheIntentOpenWhereRecoveryDoesNotLook() throws {
        let userId = try seed.users(count: 1, balance: 10_000)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 10)[0]
        let orderId = try order(userId: userId, productId: productId, quantity: 2, unitPrice: 1_000)
        let client = try TestServers.client(gateway: SimulatedPaymentGateway(failureRate: 0, seed: 5))
        let paid = try ProcessPayment(client: client, strategy: .reconciliationDeferred).pay(orderId: orderId)
        XCTAssertEqual(paid.amount, 2_000)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try balance(userId), 8_000, "money taken once")
        XCTAssertEqual(try ledgerSum(userId: userId), 8_000)
        XCTAssertEqual(try stock(productId), 8)
        XCTAssertEqual(
            try scalar("SELECT count(*) FROM payment_intents WHERE order_id = $1 AND status = 'open' AND created_at > now()", [orderId]), 1,
            "the intent is open and dated ahead")

        let report = try PaymentRecovery.run(client: client)
        XCTAssertEqual(report.interrupted, 0, "recovery does not see an intent younger than its age bound")
        XCTAssertEqual(report.stillOpen, 1)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try balance(userId), 8_000)
    }

    /// The compensation-pending control: a compensation recorded ahead of an approved charge. A
    /// compensation of a PAID order has nothing to give back, so recovery leaves it pending (with
    /// the reason) instead of marking it succeeded, and gives nothing back.
    func testACompensationOfAPaidOrderStaysPendingThroughRecovery() throws {
        let userId = try seed.users(count: 1, balance: 10_000)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 10)[0]
        let orderId = try order(userId: userId, productId: productId, quantity: 2, unitPrice: 1_000)
        let client = try TestServers.client(gateway: SimulatedPaymentGateway(failureRate: 0, seed: 5))
        XCTAssertEqual(try ProcessPayment(client: client, strategy: .compensationWrittenAhead).pay(orderId: orderId).amount, 2_000)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try Compensation.pending(db: db), [orderId], "the record written ahead is left open")

        let report = try PaymentRecovery.run(client: client)
        XCTAssertEqual(report.compensationsPendingBefore, 1)
        XCTAssertEqual(report.compensationsPendingAfter, 1, "not recorded as succeeded: nothing was given back")
        XCTAssertEqual(report.firstError?.contains("is PAID: nothing to compensate"), true, "\(report)")
        XCTAssertEqual(try Compensation.pending(db: db), [orderId])
        XCTAssertEqual(try scalar("SELECT attempts FROM compensations WHERE order_id = $1", [orderId]), 1)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try balance(userId), 8_000, "money taken once, not given back")
        XCTAssertEqual(try ledgerSum(userId: userId), 8_000)
        XCTAssertEqual(try stock(productId), 8)
    }

    func testBadInputIsATypedErrorAndWritesNothing() throws {
        let userId = try seed.users(count: 1, balance: 500)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 1)[0]
        let tooExpensive = try order(userId: userId, productId: productId, quantity: 1, unitPrice: 1_000)
        let client = try TestServers.client()
        // paid-when-refused marks the refused order PAID (the bug it is the control of): the
        // strategies after it would read a PAID order. Its scenario judges it.
        for strategy in ProcessPaymentStrategy.allCases where strategy != .paidWhenRefused {
            let payment = ProcessPayment(client: client, strategy: strategy)
            XCTAssertThrowsError(try payment.pay(orderId: 424_242)) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "order", id: 424_242))
            }
            XCTAssertThrowsError(try payment.pay(orderId: tooExpensive)) {
                XCTAssertEqual($0 as? DomainError, .insufficientBalance(userId: userId, balance: 500, required: 1_000))
            }
        }
        XCTAssertEqual(try balance(userId), 500)
        XCTAssertEqual(try stock(productId), 1)
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger WHERE reason <> 'opening'"), 0)
    }
}
