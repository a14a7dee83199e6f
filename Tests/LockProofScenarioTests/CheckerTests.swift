// Kept whole (over 400 lines): one class, one MARK section per checker, every section on the shared history and state builders at its top.
import Foundation
import LockProofCommerce
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// Every checker handed a history and a database state built by hand to break its invariant in
/// each way it names: it must name that violation. Each test first shows the same checker passing
/// on the correct state, so a violation found is the manipulation's doing.
final class CheckerTests: XCTestCase {
    private var db: PostgresConnection!
    private var nextIndex = 0

    override func setUpWithError() throws {
        try TestServers.reset()
        db = try TestServers.database()
    }

    // MARK: Helpers

    private func scenario(_ caseName: String) throws -> Scenario {
        try ScenarioParser.parse(
            // Pre-made orders only where an operation reads them (strict input refuses them elsewhere).
            "name: constructed\ncase: \(caseName)\nstrategy: seed\nseed: {\(["process-payment", "order-state"].contains(caseName) ? "orders: 1" : "")}\nworkload: {virtual_users: 1, iterations: 1}\n",
            file: "constructed.yaml")
    }

    private func entry(
        _ operation: OperationName, _ arguments: [String: Int], _ outcome: HistoryOutcome = .ok, reason: String? = nil,
        result: [String: Int]? = nil, items: [OrderItemRequest]? = nil, key: String? = nil, client: Int = 0
    ) -> HistoryEntry {
        nextIndex += 1
        return HistoryEntry(
            client: client, index: nextIndex, operation: operation, arguments: arguments, items: items,
            start: Double(nextIndex), end: Double(nextIndex) + 0.5, outcome: outcome, reason: reason, result: result, key: key)
    }

    /// The names of the violations `checker` reports.
    private func violations(
        _ checker: any Checker, _ caseName: String, _ history: [HistoryEntry], _ initial: InitialState,
        statistics: RunStatistics = RunStatistics()
    ) throws -> [String] {
        let context = CheckContext(scenario: try scenario(caseName), initial: initial, db: db, statistics: statistics)
        // A fresh checker of the same kind for every history: a checker holds the state of one run.
        let fresh = type(of: checker).init()
        for entry in history where fresh.operations.contains(entry.operation) { fresh.observe(entry) }
        let result = try fresh.check(context)
        XCTAssertEqual(result.passed, result.violations.isEmpty)
        return result.violations.map(\.name)
    }

    /// Runs `body` in a transaction that is rolled back: for states the schema's constraints
    /// forbid (dropped inside it), without touching the schema the other tests use.
    private func insideRolledBackTransaction(_ body: () throws -> Void) throws {
        try db.execute("BEGIN")
        defer { _ = try? db.execute("ROLLBACK") }
        try body()
    }

    private func users(_ balances: [Int]) throws -> InitialState {
        var initial = InitialState()
        initial.users = try balances.map { balance in
            let id = try XCTUnwrap(db.query("INSERT INTO users (name, balance) VALUES ('u', $1) RETURNING id", [balance]).int(0, 0))
            if balance != 0 {
                try db.query("INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'opening', 'seed')", [id, balance])
            }
            initial.balances[id] = balance
            return id
        }
        return initial
    }

    private func product(stock: Int, into initial: inout InitialState) throws -> Int {
        let id = try XCTUnwrap(
            db.query("INSERT INTO products (name, price, stock) VALUES ('p', 100, $1) RETURNING id", [stock]).int(0, 0))
        try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, $2, 'opening', 'seed')", [id, stock])
        initial.products.append(id)
        initial.stock[id] = stock
        return id
    }

    private func order(user: Int, status: String, total: Int, items: [(product: Int, quantity: Int)]) throws -> Int {
        let id = try XCTUnwrap(
            db.query("INSERT INTO orders (user_id, status, total_amount) VALUES ($1, $2, $3) RETURNING id", [user, status, total]).int(0, 0))
        for item in items {
            try db.query(
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, 100)",
                [id, item.product, item.quantity])
        }
        return id
    }

    private func charge(_ user: Int, _ amount: Int, reference: String) throws {
        try db.query("UPDATE users SET balance = balance + $1 WHERE id = $2", [amount, user])
        try db.query("INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'charge', $3)", [user, amount, reference])
    }

    // MARK: money-conservation

    func testMoneyConservationNamesEveryWayMoneyGoesWrong() throws {
        let checker = MoneyConservationChecker()
        let initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        let charged = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 1000, "applied": 1], key: "k1")
        try charge(user, 1000, reference: "k1")
        XCTAssertEqual(try violations(checker, "charge-balance", [charged], initial), [])

        // Two charges acknowledged, one applied: a lost update.
        let second = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 2000, "applied": 1], key: "k2")
        let lost = try violations(checker, "charge-balance", [charged, second], initial)
        XCTAssertTrue(lost.contains("balance-below-acknowledged"), "\(lost)")
        XCTAssertTrue(lost.contains("acknowledged-charge-missing"), "\(lost)")

        // Applied twice for one acknowledged charge with one key.
        try charge(user, 1000, reference: "k1")
        let twice = try violations(checker, "charge-balance", [charged], initial)
        XCTAssertTrue(twice.contains("balance-above-acknowledged"), "\(twice)")
        XCTAssertTrue(twice.contains("charge-applied-twice"), "\(twice)")

        // Back to the right state, then the ledger disagrees with the balance.
        try db.query("DELETE FROM balance_ledger WHERE reference = 'k1'")
        try db.query("UPDATE users SET balance = 0 WHERE id = $1", [user])
        try charge(user, 1000, reference: "k1")
        XCTAssertEqual(try violations(checker, "charge-balance", [charged], initial), [])
        try db.query("UPDATE balance_ledger SET delta = 500 WHERE reference = 'k1'")
        XCTAssertEqual(try violations(checker, "charge-balance", [charged], initial), ["ledger-mismatch"])
    }

    func testMoneyConservationCatchesANegativeBalance() throws {
        let checker = MoneyConservationChecker()
        let initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        try insideRolledBackTransaction {
            try db.execute("ALTER TABLE users DROP CONSTRAINT users_balance_non_negative")
            let unknown = entry(.charge, ["user": user, "amount": 500], .unknown, reason: "connection_lost")
            try charge(user, -500, reference: "charge")
            let found = try violations(checker, "charge-balance", [unknown], initial)
            XCTAssertTrue(found.contains("negative-balance"), "\(found)")
        }
    }

    func testAnAlreadyAppliedAnswerNeedsAnotherOperationThatAppliedTheKey() throws {
        let checker = MoneyConservationChecker()
        let initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        // The key claimed, the charge never applied, and the client told "already applied".
        let orphan = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 0, "applied": 0], key: "k1")
        let found = try violations(checker, "charge-balance", [orphan], initial)
        XCTAssertTrue(found.contains("already-applied-key-never-applied"), "\(found)")
        XCTAssertTrue(found.contains("acknowledged-charge-missing"), "\(found)")

        // Its own earlier attempt does not count: the same client and index is the same operation.
        // Another operation that applied the key does, and so does one that may have (unknown).
        try charge(user, 1000, reference: "k1")
        let applier = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 1000, "applied": 1], key: "k1", client: 1)
        let duplicate = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 1000, "applied": 0], key: "k1", client: 2)
        XCTAssertEqual(try violations(checker, "charge-balance", [applier, duplicate], initial), [])
        let maybe = entry(.charge, ["user": user, "amount": 1000], .unknown, reason: "connection_lost", key: "k1", client: 1)
        let afterUnknown = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 1000, "applied": 0], key: "k1", client: 2)
        XCTAssertEqual(try violations(checker, "charge-balance", [maybe, afterUnknown], initial), [])

        // A duplicate answered before the applier even started is not backed by it.
        let early = HistoryEntry(
            client: 3, index: 0, operation: .charge, arguments: ["user": user, "amount": 1000], items: nil, start: 0,
            end: 0.1, outcome: .ok, reason: nil, result: ["balance": 0, "applied": 0], key: "k1")
        let tooEarly = try violations(checker, "charge-balance", [early, applier], initial)
        XCTAssertTrue(tooEarly.contains("already-applied-key-never-applied"), "\(tooEarly)")
    }

    /// The checker reads balances from the database, never from what the system reported.
    func testMoneyConservationTrustsTheDatabaseNotTheSystemsReport() throws {
        let checker = MoneyConservationChecker()
        let initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        try charge(user, 1000, reference: "charge")
        let wrongReport = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 999_999, "applied": 1])
        XCTAssertEqual(try violations(checker, "charge-balance", [wrongReport], initial), [], "a wrong reported balance over a right database")

        try db.query("UPDATE users SET balance = 0 WHERE id = $1", [user])
        try db.query("DELETE FROM balance_ledger WHERE user_id = $1", [user])
        let rightReport = entry(.charge, ["user": user, "amount": 1000], result: ["balance": 1000, "applied": 1])
        let found = try violations(checker, "charge-balance", [rightReport], initial)
        XCTAssertTrue(found.contains("balance-below-acknowledged"), "a right report over a wrong database: \(found)")
    }

    /// Two payments of one order, each acknowledged and each in the ledger: the balance is exactly
    /// what the history says (two payments of 1,000), so the bounds pass; only the order's own
    /// count shows it was paid twice (process-payment-no-status-guard).
    func testMoneyConservationCatchesAnOrderPaidTwice() throws {
        let checker = MoneyConservationChecker()
        let initial = try users([10_000])
        let user = try XCTUnwrap(initial.users.first)
        let paidOrder = try order(user: user, status: "PAID", total: 1000, items: [])
        let reference = "order:\(paidOrder)"
        func pay(_ delta: Int, _ reason: String) throws {
            try db.query("UPDATE users SET balance = balance + $1 WHERE id = $2", [delta, user])
            try db.query(
                "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, $3, $4)", [user, delta, reason, reference])
        }
        let paid = entry(.pay, ["order": paidOrder], result: ["amount": 1000, "user": user])
        let refused = entry(.pay, ["order": paidOrder], .fail, reason: "order_not_payable")
        try pay(-1000, "payment")
        XCTAssertEqual(try violations(checker, "process-payment", [paid, refused], initial), [], "paid once, the race's loser refused")

        // Both racing payments acknowledged and deducted.
        try pay(-1000, "payment")
        let again = entry(.pay, ["order": paidOrder], result: ["amount": 1000, "user": user])
        XCTAssertEqual(try violations(checker, "process-payment", [paid, again], initial), ["order-paid-twice"])

        // A second deduction that a compensation gave back is one payment.
        try pay(1000, "compensation")
        XCTAssertEqual(try violations(checker, "process-payment", [paid, entry(.pay, ["order": paidOrder], .unknown)], initial), [])

        // Two deductions in the ledger for one acknowledged and one unknown payment: the bounds
        // allow the money (the unknown one may have paid), the order's ledger does not.
        try pay(-1000, "payment")
        let unknown = entry(.pay, ["order": paidOrder], .unknown, reason: "connection_lost")
        XCTAssertEqual(try violations(checker, "process-payment", [paid, unknown, unknown], initial), ["order-paid-twice"])
    }

    // MARK: stock-conservation

    func testStockConservationNamesEveryWayStockGoesWrong() throws {
        let checker = StockConservationChecker()
        var initial = try users([10_000])
        let user = try XCTUnwrap(initial.users.first)
        let product = try product(stock: 10, into: &initial)
        let paidOrder = try order(user: user, status: "PAID", total: 200, items: [(product, 2)])
        initial.orders = [paidOrder]
        try db.query("UPDATE products SET stock = 8 WHERE id = $1", [product])
        try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, -2, 'payment', 'o')", [product])
        let paid = entry(.pay, ["order": paidOrder], result: ["amount": 200, "user": user])
        XCTAssertEqual(try violations(checker, "process-payment", [paid], initial), [])

        try db.query("UPDATE products SET stock = 6 WHERE id = $1", [product])
        try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, -2, 'payment', 'x')", [product])
        XCTAssertEqual(try violations(checker, "process-payment", [paid], initial), ["stock-below-acknowledged"])

        try db.query("UPDATE products SET stock = 10 WHERE id = $1", [product])
        try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, 4, 'compensation', 'x')", [product])
        XCTAssertEqual(try violations(checker, "process-payment", [paid], initial), ["stock-above-acknowledged"])

        try db.query("UPDATE products SET stock = 8 WHERE id = $1", [product])
        XCTAssertEqual(try violations(checker, "process-payment", [paid], initial), ["ledger-mismatch"])

        try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, -2, 'payment', 'y')", [product])
        try db.query("UPDATE orders SET status = 'PENDING' WHERE id = $1", [paidOrder])
        XCTAssertEqual(try violations(checker, "process-payment", [paid], initial), ["acknowledged-payment-not-paid"])

        try db.query("UPDATE orders SET status = 'PAID' WHERE id = $1", [paidOrder])
        let other = try order(user: user, status: "PAID", total: 0, items: [])
        let found = try violations(checker, "process-payment", [paid], initial)
        XCTAssertEqual(found, ["paid-without-acknowledgement"], "order \(other)")
    }

    func testStockConservationCatchesNegativeStock() throws {
        let checker = StockConservationChecker()
        var initial = InitialState()
        let product = try product(stock: 1, into: &initial)
        try insideRolledBackTransaction {
            try db.execute("ALTER TABLE products DROP CONSTRAINT products_stock_non_negative")
            try db.query("UPDATE products SET stock = -1 WHERE id = $1", [product])
            try db.query("INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, -2, 'payment', 'x')", [product])
            let found = try violations(checker, "process-payment", [], initial)
            XCTAssertTrue(found.contains("negative-stock"), "\(found)")
            // Named for what it is, not as a bound violation as well.
            XCTAssertFalse(found.contains("stock-below-acknowledged"), "\(found)")
        }
    }

    // MARK: compensation

    func testCompensationNamesEveryUnfinishedOrWrongCompensation() throws {
        let checker = CompensationChecker()
        let initial = try users([10_000])
        let user = try XCTUnwrap(initial.users.first)
        let failed = try order(user: user, status: "PAYMENT_FAILED", total: 100, items: [])
        try db.query("INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'succeeded', 'declined')", [failed])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), [])

        try db.query("UPDATE compensations SET status = 'pending' WHERE order_id = $1", [failed])
        let statistics = RunStatistics()
        XCTAssertEqual(
            try violations(checker, "process-payment", [], initial, statistics: statistics),
            ["failed-payment-not-compensated"])
        try db.query("DELETE FROM compensations")
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["failed-payment-not-compensated"])

        try db.query("UPDATE orders SET status = 'PAYING' WHERE id = $1", [failed])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["compensation-lost"])

        try db.query("INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'pending', 'declined')", [failed])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial, statistics: statistics), ["compensation-pending"])
        XCTAssertEqual(statistics.gauge("lockproof_compensations_pending"), 1)

        try db.query("UPDATE orders SET status = 'PAID' WHERE id = $1", [failed])
        try db.query("UPDATE compensations SET status = 'succeeded' WHERE order_id = $1", [failed])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["compensated-order-not-failed"])
    }

    /// The durable-payment settlement checks: an intent left open, money both charged by the
    /// gateway and given back, and an order PAID that the gateway never charged.
    func testCompensationNamesEveryUnsettledOrDisagreeingPayment() throws {
        let checker = CompensationChecker()
        let initial = try users([10_000])
        let user = try XCTUnwrap(initial.users.first)
        let paid = try order(user: user, status: "PAID", total: 100, items: [])
        try db.query("INSERT INTO payment_intents (order_id, user_id, amount, status) VALUES ($1, $2, 100, 'paid')", [paid, user])
        try db.query("INSERT INTO gateway_charges (order_id, amount, outcome) VALUES ($1, 100, 'approved')", [paid])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), [])

        try db.query("UPDATE payment_intents SET status = 'open' WHERE order_id = $1", [paid])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["payment-unsettled"])
        try db.query("UPDATE payment_intents SET status = 'paid' WHERE order_id = $1", [paid])

        try db.query("UPDATE gateway_charges SET outcome = 'declined' WHERE order_id = $1", [paid])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["paid-without-charge"])

        try db.query("UPDATE gateway_charges SET outcome = 'approved' WHERE order_id = $1", [paid])
        try db.query("UPDATE orders SET status = 'PAYMENT_FAILED' WHERE id = $1", [paid])
        try db.query("INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'succeeded', 'declined')", [paid])
        XCTAssertEqual(try violations(checker, "process-payment", [], initial), ["charged-and-refunded"])
    }

    // MARK: coupon-quantity

    func testCouponNamesEveryWayIssuingGoesWrong() throws {
        let checker = CouponChecker()
        var initial = try users([0, 0, 0])
        let coupon = try XCTUnwrap(db.query("INSERT INTO coupons (name, total_quantity) VALUES ('c', 2) RETURNING id").int(0, 0))
        initial.couponId = coupon
        initial.couponTotal = 2
        let (a, b, c) = (initial.users[0], initial.users[1], initial.users[2])
        try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2), ($3, $2)", [a, coupon, b])
        try db.query("UPDATE coupons SET issued_quantity = 2 WHERE id = $1", [coupon])
        let issued = [entry(.issue, ["user": a, "coupon": coupon]), entry(.issue, ["user": b, "coupon": coupon])]
        XCTAssertEqual(try violations(checker, "issue-coupon", issued, initial), [])

        try db.query("UPDATE coupons SET issued_quantity = 1 WHERE id = $1", [coupon])
        XCTAssertEqual(try violations(checker, "issue-coupon", issued, initial), ["rows-differ-from-issued-quantity"])

        try db.query("UPDATE coupons SET issued_quantity = 3 WHERE id = $1", [coupon])
        try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2)", [c, coupon])
        let over = try violations(checker, "issue-coupon", issued + [entry(.issue, ["user": c, "coupon": coupon])], initial)
        XCTAssertEqual(over, ["over-issued"])

        let tooFew = try violations(checker, "issue-coupon", issued, initial)
        XCTAssertTrue(tooFew.contains("rows-outside-acknowledged-bounds"), "\(tooFew)")

        // The right number of rows, but the acknowledged user has none.
        try db.query("DELETE FROM user_coupons WHERE user_id = $1", [c])
        try db.query("UPDATE coupons SET issued_quantity = 2 WHERE id = $1", [coupon])
        let wrongHolder = try violations(
            checker, "issue-coupon", [issued[0], entry(.issue, ["user": c, "coupon": coupon])], initial)
        XCTAssertEqual(wrongHolder, ["acknowledged-issue-without-row"])

        try insideRolledBackTransaction {
            try db.execute("ALTER TABLE user_coupons DROP CONSTRAINT user_coupons_user_coupon_unique")
            try db.query("DELETE FROM user_coupons WHERE user_id = $1", [b])
            try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2)", [a, coupon])
            let duplicate = try violations(checker, "issue-coupon", [issued[0], issued[0]], initial)
            XCTAssertEqual(duplicate, ["duplicate-user-coupon"])
        }
    }

    // MARK: order-creation

    func testOrderCreationNamesMissingPhantomAndOversizedOrders() throws {
        let checker = OrderCreationChecker()
        var initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        let product = try product(stock: 5, into: &initial)
        let lines = [OrderItemRequest(productId: product, quantity: 2), OrderItemRequest(productId: product, quantity: 1)]
        let made = try order(user: user, status: "PENDING", total: 300, items: [(product, 2), (product, 1)])
        let created = entry(.create, ["user": user], result: ["order": made, "total": 300], items: lines)
        XCTAssertEqual(try violations(checker, "create-order", [created], initial), [])

        let ghost = entry(.create, ["user": user], result: ["order": made + 100, "total": 300], items: lines)
        let missing = try violations(checker, "create-order", [created, ghost], initial)
        XCTAssertEqual(missing, ["acknowledged-order-missing"])

        try db.query("DELETE FROM order_items WHERE order_id = $1 AND quantity = 1", [made])
        XCTAssertEqual(try violations(checker, "create-order", [created], initial), ["order-items-missing"])

        try db.query("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, 1, 100)", [made, product])
        _ = try order(user: user, status: "PENDING", total: 100, items: [(product, 1)])
        XCTAssertEqual(try violations(checker, "create-order", [created], initial), ["phantom-order"])

        try db.query("DELETE FROM order_items WHERE order_id <> $1", [made])
        try db.query("DELETE FROM orders WHERE id <> $1", [made])
        try db.query("UPDATE order_items SET quantity = 5 WHERE order_id = $1 AND quantity = 2", [made])
        XCTAssertEqual(try violations(checker, "create-order", [created], initial), ["created-beyond-stock"])
    }

    // MARK: single-winner

    func testTransitionNamesSeveralWinnersAWrongStateAndAChangeWithoutWinner() throws {
        let checker = TransitionChecker()
        var initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        let raced = try order(user: user, status: "COMPLETED", total: 0, items: [])
        let untouched = try order(user: user, status: "PENDING", total: 0, items: [])
        initial.orders = [raced, untouched]
        let complete = entry(.complete, ["order": raced])
        let lostCancel = entry(.cancel, ["order": raced], .fail, reason: "conflict")
        XCTAssertEqual(try violations(checker, "order-state", [complete, lostCancel], initial), [])

        let cancel = entry(.cancel, ["order": raced])
        XCTAssertEqual(try violations(checker, "order-state", [complete, cancel], initial), ["several-winners"])

        try db.query("UPDATE orders SET status = 'CANCELLED' WHERE id = $1", [raced])
        XCTAssertEqual(try violations(checker, "order-state", [complete, lostCancel], initial), ["winner-not-stored"])

        try db.query("UPDATE orders SET status = 'COMPLETED' WHERE id IN ($1, $2)", [raced, untouched])
        XCTAssertEqual(try violations(checker, "order-state", [complete, lostCancel], initial), ["changed-without-winner"])
    }

    // MARK: cart-increments

    func testCartNamesLostAndPhantomIncrements() throws {
        let checker = CartChecker()
        var initial = try users([0])
        let user = try XCTUnwrap(initial.users.first)
        let product = try product(stock: 10, into: &initial)
        try db.query("INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($1, $2, 3)", [user, product])
        let adds = (0..<3).map { _ in entry(.add, ["user": user, "product": product, "quantity": 1]) }
        let maybe = entry(.add, ["user": user, "product": product, "quantity": 1], .unknown, reason: "connection_lost")
        XCTAssertEqual(try violations(checker, "cart-quantity", adds + [maybe], initial), [])

        try db.query("UPDATE cart_items SET quantity = 2")
        XCTAssertEqual(try violations(checker, "cart-quantity", adds, initial), ["lost-increment"])

        try db.query("UPDATE cart_items SET quantity = 5")
        XCTAssertEqual(try violations(checker, "cart-quantity", adds + [maybe], initial), ["phantom-increment"])
    }

    // MARK: no-deadlock

    func testDeadlockCheckerCountsVictimsAndRetriedDeadlocks() throws {
        let checker = DeadlockChecker()
        let initial = InitialState()
        XCTAssertEqual(try violations(checker, "create-order", [entry(.create, ["user": 1])], initial), [])
        let victim = entry(.create, ["user": 1], .fail, reason: "deadlock")
        XCTAssertEqual(try violations(checker, "create-order", [victim], initial), ["deadlock"])

        // A deadlock retried away leaves no failed operation, only the counter.
        let statistics = RunStatistics()
        statistics.record(.databaseError(.deadlock, constraint: nil), caseName: "create-order")
        XCTAssertEqual(
            try violations(checker, "create-order", [entry(.create, ["user": 1])], initial, statistics: statistics), ["deadlock"])
    }
}
