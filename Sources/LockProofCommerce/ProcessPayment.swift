import LockProofLocking
import LockProofPostgres

/// Case 2: pay a PENDING order: deduct the balance and the stock, call the gateway outside every
/// lock, and compensate when the gateway fails.
public enum ProcessPaymentStrategy: String, Sendable, CaseIterable, Codable {
    /// Redis lock `balance:user:{id}`, then `FOR UPDATE` on the user and on each product in
    /// ascending id order; deduct; gateway after commit; compensation on failure.
    case seed
    /// The same row locks without the Redis lock.
    case pessimistic
    /// Read, check, write absolute values back with no lock. The negative control: overspends.
    case naive
    /// The negative control of "an order is paid once": the pessimistic row locks on the user and
    /// the products, but the order is read without a lock, its status checked in the application
    /// and then moved to PAYING unconditionally, and the intent written `ON CONFLICT DO NOTHING`
    /// (as an idempotent retry would; the intents' primary key is the other guard every strategy
    /// has). Payments racing on one order all pass the stale check and all deduct.
    case noStatusGuard = "no-status-guard"
    /// The negative control of the stock checker's upper bound: stock created while the stock
    /// ledger agrees. The pessimistic row locks, but each line takes one unit whatever its
    /// quantity, and the ledger records the unit taken.
    case stockPerLine = "stock-per-line"
    /// The negative control of the stock checker's lower bound: stock lost while the stock ledger
    /// agrees. The pessimistic row locks, but each line's quantity is taken twice (as if reserved
    /// at checkout and taken again at payment), and the ledger records both.
    case stockTakenTwice = "stock-taken-twice"
    /// The negative control of the stock checker's ledger comparison alone: the pessimistic row
    /// locks and the right quantity taken from stock, but the stock ledger records one unit per
    /// line. Stock lies within the bounds; the ledger sums to more.
    case stockLedgerPerLine = "stock-ledger-per-line"
    /// The negative control of the stock checker's "no order PAID without a payment" alone: the
    /// pessimistic row locks and the right deduction, but when the funds check refuses a payment,
    /// its error path marks the order PAID ("the customer was sent to checkout") before reporting
    /// the refusal. Nothing is taken from balance or stock for it, no intent or gateway charge is
    /// written; the order is PAID and its only payment failed.
    case paidWhenRefused = "paid-when-refused"
    /// The negative control of the compensation checker's "a failed payment is compensated, on
    /// record" alone: the pessimistic deduction, and on a decline the compensation transaction runs
    /// without its durable `pending` record first ("one transaction is enough"): balance and stock
    /// come back, the order is PAYMENT_FAILED, no compensation row says so.
    case compensationUnrecorded = "compensation-unrecorded"
    /// The negative control of the compensation checker's "a compensated order is PAYMENT_FAILED"
    /// alone: the pessimistic deduction and the right compensation on a decline, then the order is
    /// put back to PENDING ("so the customer can pay again"): a succeeded compensation of an order
    /// that is not failed.
    case compensationReopensOrder = "compensation-reopens-order"
    /// The negative control of the compensation checker's "a PAID order was approved by the gateway"
    /// alone: the pessimistic deduction, then the order is marked PAID without calling the gateway
    /// (a "trusted customer" shortcut): money and stock taken once, no charge at the gateway.
    case gatewaySkipped = "gateway-skipped"
    /// The negative control of the compensation checker's "a compensated payment was not charged"
    /// alone: the pessimistic deduction and the gateway call, but its receipt is read with the
    /// wrong prefix, so an approval is taken for a decline and compensated: the gateway charged an
    /// order whose balance and stock were given back.
    case receiptMisread = "receipt-misread"
    /// The negative control of the compensation checker's "no order left PAYING without a
    /// compensation" alone: the pessimistic deduction, and on a decline the intent is closed as
    /// `compensated` ("the refund is queued") and the gateway's error passed up untranslated, so the
    /// payment ends unknown; no compensation is recorded or run, and recovery finds no open intent.
    case refundQueued = "refund-queued"
    /// The negative control of the compensation checker's "no payment intent left open" alone: the
    /// pessimistic deduction and the gateway call, and on an approval the order is marked PAID while
    /// its intent is left open for "tomorrow's reconciliation batch", timestamped with that batch's
    /// date (a day ahead). Recovery settles only intents older than its age bound, so it skips
    /// them: money, stock and gateway agree, every order PAID, every intent open.
    case reconciliationDeferred = "reconciliation-deferred"
    /// The negative control of the compensation checker's "no compensation left pending" alone: the
    /// pessimistic deduction, then the compensation is recorded `pending` before the gateway is
    /// called ("so that no crash between a decline and its record can lose it"), and an approval
    /// marks the order PAID without closing that record. Recovery will not carry out a
    /// compensation of a PAID order, so every record stays pending; money, stock, intents and
    /// gateway agree.
    case compensationWrittenAhead = "compensation-written-ahead"
}

public struct PaymentResult: Sendable, Equatable {
    public let orderId: Int
    public let userId: Int
    public let amount: Int
    public let balanceAfter: Int
    public let receipt: String
}

/// What the deduction took, so that the compensation can give back exactly that.
struct Deduction {
    let orderId: Int
    let userId: Int
    let amount: Int
    let items: [(productId: Int, quantity: Int)]
    let balanceAfter: Int
}

public struct ProcessPayment {
    public let client: CommerceClient
    public let strategy: ProcessPaymentStrategy

    public init(client: CommerceClient, strategy: ProcessPaymentStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    /// Once the deduction has committed, the payment has taken money: a later failure of the
    /// client's own (a pool timeout, a lock timeout marking it PAID, a compensation that failed)
    /// leaves an open intent that recovery settles either way, so the outcome is unknown, never a
    /// plain failure that a checker would read as "took nothing".
    public func pay(orderId: Int) throws -> PaymentResult {
        var deducted = false
        do {
            return try pay(orderId: orderId, deducted: &deducted)
        } catch where deducted && OperationOutcome.classify(error) == .error {
            throw PaymentInterrupted(orderId: orderId, cause: error)
        }
    }

    private func pay(orderId: Int, deducted: inout Bool) throws -> PaymentResult {
        let probe = client.probe(.processPayment)
        let userId = try orderOwner(orderId)
        let deduction: Deduction
        switch strategy {
        case .seed:
            deduction = try client.withDistributedLock(ChargeBalance.lockKey(userId: userId), probe: probe) {
                try deductLocked(orderId, probe)
            }
        case .pessimistic:
            deduction = try deductLocked(orderId, probe)
        case .naive:
            deduction = try deductNaively(orderId, probe)
        case .noStatusGuard:
            deduction = try deductLocked(orderId, probe, statusGuard: false)
        case .stockPerLine:
            deduction = try deductLocked(orderId, probe, stockTaken: { _ in 1 })
        case .stockTakenTwice:
            deduction = try deductLocked(orderId, probe, stockTaken: { 2 * $0 })
        case .stockLedgerPerLine:
            deduction = try deductLocked(orderId, probe, stockRecorded: { _ in 1 })
        case .compensationUnrecorded, .compensationReopensOrder, .gatewaySkipped, .receiptMisread, .refundQueued,
            .reconciliationDeferred, .compensationWrittenAhead:
            deduction = try deductLocked(orderId, probe)
        case .paidWhenRefused:
            do {
                deduction = try deductLocked(orderId, probe)
            } catch let refusal as DomainError {
                if case .insufficientBalance = refusal {
                    try client.withDatabase {
                        try $0.query(
                            "UPDATE orders SET status = 'PAID', version = version + 1, updated_at = now() WHERE id = $1 AND status = 'PENDING'",
                            [orderId])
                    }
                }
                throw refusal
            }
        }
        deducted = true
        try client.faults.afterDeduction?(orderId)
        if [.compensationUnrecorded, .compensationReopensOrder, .gatewaySkipped, .receiptMisread, .refundQueued, .reconciliationDeferred,
            .compensationWrittenAhead].contains(strategy)
        {
            return try settleAsControl(deduction, probe)
        }
        // Outside the transaction and the lock: a slow gateway holds no lock.
        let receipt: String
        do {
            receipt = try client.gateway.charge(orderId: orderId, amount: deduction.amount)
        } catch let error as GatewayDeclined {
            let reason = String(describing: error)
            try compensate(deduction, reason: reason, probe: probe)
            throw DomainError.paymentDeclined(orderId: orderId, reason: reason)
        }
        // A timeout (no answer) leaves the intent open: `PaymentRecovery` asks the gateway later.
        try client.withDatabase { try Self.markPaid(orderId: orderId, db: $0, probe: probe) }
        return PaymentResult(
            orderId: orderId, userId: userId, amount: deduction.amount, balanceAfter: deduction.balanceAfter,
            receipt: receipt)
    }

    /// The compensation checker's single-bound controls: the seed's settlement after the
    /// deduction, each wrong in one way (see their cases).
    private func settleAsControl(_ deduction: Deduction, _ probe: Probe) throws -> PaymentResult {
        let orderId = deduction.orderId
        var receipt = "trusted-\(orderId)"
        if strategy == .compensationWrittenAhead {
            try client.transaction(probe: probe) { db in
                try db.query(
                    "INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'pending', 'written ahead of the gateway call')",
                    [orderId])
            }
        }
        do {
            if strategy != .gatewaySkipped { receipt = try client.gateway.charge(orderId: orderId, amount: deduction.amount) }
            if strategy == .receiptMisread && !receipt.hasPrefix("ok-") {
                throw GatewayDeclined(reason: "receipt \(receipt) not understood")
            }
        } catch let error as GatewayDeclined {
            if strategy == .refundQueued {
                try client.withDatabase {
                    try $0.query(
                        "UPDATE payment_intents SET status = 'compensated', settled_at = now() WHERE order_id = $1 AND status = 'open'",
                        [orderId])
                }
                throw error
            }
            let reason = String(describing: error)
            if strategy == .compensationUnrecorded {
                try Compensation.run(orderId: orderId, client: client, probe: probe)
            } else {
                try compensate(deduction, reason: reason, probe: probe)
            }
            if strategy == .compensationReopensOrder {
                try client.withDatabase {
                    try $0.query(
                        "UPDATE orders SET status = 'PENDING', version = version + 1, updated_at = now() WHERE id = $1 AND status = 'PAYMENT_FAILED'",
                        [orderId])
                }
            }
            throw DomainError.paymentDeclined(orderId: orderId, reason: reason)
        }
        if strategy == .reconciliationDeferred {
            try client.transaction(probe: probe) { db in
                try db.query(
                    "UPDATE orders SET status = 'PAID', version = version + 1, updated_at = now() WHERE id = $1 AND status = 'PAYING'",
                    [orderId])
                try db.query(
                    "UPDATE payment_intents SET created_at = now() + interval '1 day' WHERE order_id = $1 AND status = 'open'",
                    [orderId])
            }
        } else {
            try client.withDatabase { try Self.markPaid(orderId: orderId, db: $0, probe: probe) }
        }
        return PaymentResult(
            orderId: orderId, userId: deduction.userId, amount: deduction.amount, balanceAfter: deduction.balanceAfter, receipt: receipt)
    }

    /// The gateway approved: the order becomes PAID and its intent `paid`, in one transaction.
    /// Returns false when it was settled already (by recovery, say).
    @discardableResult
    static func markPaid(orderId: Int, db: PostgresConnection, probe: Probe) throws -> Bool {
        try transaction(db, probe: probe) { db in
            try db.query(
                "UPDATE orders SET status = 'PAID', version = version + 1, updated_at = now() WHERE id = $1 AND status = 'PAYING'",
                [orderId])
            let settled = try db.query(
                "UPDATE payment_intents SET status = 'paid', settled_at = now() WHERE order_id = $1 AND status = 'open'",
                [orderId])
            return settled.affectedRows == 1
        }
    }

    private func orderOwner(_ orderId: Int) throws -> Int {
        // Its own short borrow: a pooled session is not held while the Redis lock is awaited.
        guard let owner = try client.withDatabase({ try $0.query("SELECT user_id FROM orders WHERE id = $1", [orderId]) }).int(0, 0)
        else { throw DomainError.notFound(entity: "order", id: orderId) }
        return owner
    }

    private func loadOrder(_ orderId: Int, forUpdate: Bool, db: PostgresConnection) throws
        -> (userId: Int, total: Int, items: [(productId: Int, quantity: Int)])
    {
        let order = try db.query(
            "SELECT user_id, status, total_amount FROM orders WHERE id = $1\(forUpdate ? " FOR UPDATE" : "")", [orderId])
        guard let userId = order.int(0, 0), let statusText = order.string(0, 1), let total = order.int(0, 2) else {
            throw DomainError.notFound(entity: "order", id: orderId)
        }
        let status = OrderStatus(rawValue: statusText) ?? .pending
        guard status == .pending else { throw DomainError.orderNotPayable(orderId: orderId, status: status) }
        let rows = try db.query(
            "SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id", [orderId])
        let items = (0..<rows.rowCount).map { (productId: rows.int($0, 0)!, quantity: rows.int($0, 1)!) }
        return (userId, total, items)
    }

    /// `statusGuard: false` is the negative control's: the order neither locked nor moved on condition.
    /// `stockTaken` and `stockRecorded` (what a line of a quantity takes from stock, and what the
    /// stock ledger says it took) are the stock controls': right, both are the quantity.
    private func deductLocked(
        _ orderId: Int, _ probe: Probe, statusGuard: Bool = true, stockTaken: @escaping (Int) -> Int = { $0 },
        stockRecorded: ((Int) -> Int)? = nil
    ) throws -> Deduction {
        try client.transaction(probe: probe) { db in
            var order = try loadOrder(orderId, forUpdate: statusGuard, db: db)
            let users = try lockRowsForUpdate(db, table: .users, ids: [order.userId], columns: "balance", probe: probe)
            let products = try lockRowsForUpdate(
                db, table: .products, ids: order.items.map(\.productId), columns: "stock", probe: probe)
            guard let balance = users[order.userId]?.int(0, 0) else {
                throw DomainError.notFound(entity: "user", id: order.userId)
            }
            try checkFunds(order, balance: balance, stock: { products[$0]?.int(0, 0) })
            try client.think()
            try db.query(
                "UPDATE users SET balance = balance - $1, version = version + 1 WHERE id = $2",
                [order.total, order.userId])
            for item in order.items {
                try db.query(
                    "UPDATE products SET stock = stock - $1, version = version + 1 WHERE id = $2",
                    [stockTaken(item.quantity), item.productId])
            }
            let recorded = stockRecorded ?? stockTaken
            order.items = order.items.map { (productId: $0.productId, quantity: recorded($0.quantity)) }
            return try recordDeduction(orderId, order, balanceAfter: balance - order.total, statusGuard: statusGuard, db: db)
        }
    }

    private func deductNaively(_ orderId: Int, _ probe: Probe) throws -> Deduction {
        try client.transaction(probe: probe) { db in
            let order = try loadOrder(orderId, forUpdate: false, db: db)
            guard let balance = try db.query("SELECT balance FROM users WHERE id = $1", [order.userId]).int(0, 0) else {
                throw DomainError.notFound(entity: "user", id: order.userId)
            }
            var stock: [Int: Int] = [:]
            for item in order.items {
                stock[item.productId] = try db.query("SELECT stock FROM products WHERE id = $1", [item.productId]).int(0, 0)
            }
            try checkFunds(order, balance: balance, stock: { stock[$0] })
            try client.think()
            try db.query("UPDATE users SET balance = $1 WHERE id = $2", [balance - order.total, order.userId])
            for item in order.items {
                try db.query(
                    "UPDATE products SET stock = $1 WHERE id = $2", [stock[item.productId]! - item.quantity, item.productId])
            }
            return try recordDeduction(orderId, order, balanceAfter: balance - order.total, db: db)
        }
    }

    private func checkFunds(
        _ order: (userId: Int, total: Int, items: [(productId: Int, quantity: Int)]), balance: Int,
        stock: (Int) -> Int?
    ) throws {
        guard balance >= order.total else {
            throw DomainError.insufficientBalance(userId: order.userId, balance: balance, required: order.total)
        }
        // One product may come on several lines: its stock must cover their sum (checked line by
        // line, the second line's update would break the stock's CHECK: an error, not a refusal).
        var requested: [Int: Int] = [:]
        for item in order.items { requested[item.productId, default: 0] += item.quantity }
        for (productId, quantity) in requested.sorted(by: { $0.key < $1.key }) {
            guard let available = stock(productId) else {
                throw DomainError.notFound(entity: "product", id: productId)
            }
            guard available >= quantity else {
                throw DomainError.insufficientStock(productId: productId, available: available, requested: quantity)
            }
        }
    }

    private func recordDeduction(
        _ orderId: Int, _ order: (userId: Int, total: Int, items: [(productId: Int, quantity: Int)]),
        balanceAfter: Int, statusGuard: Bool = true, db: PostgresConnection
    ) throws -> Deduction {
        let reference = "order:\(orderId)"
        try db.query(
            "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'payment', $3)",
            [order.userId, -order.total, reference])
        for item in order.items {
            try db.query(
                "INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, $2, 'payment', $3)",
                [item.productId, -item.quantity, reference])
        }
        guard statusGuard else {
            try db.query("UPDATE orders SET status = 'PAYING', version = version + 1, updated_at = now() WHERE id = $1", [orderId])
            try db.query(
                "INSERT INTO payment_intents (order_id, user_id, amount, status) VALUES ($1, $2, $3, 'open') ON CONFLICT (order_id) DO NOTHING",
                [orderId, order.userId, order.total])
            return Deduction(
                orderId: orderId, userId: order.userId, amount: order.total, items: order.items, balanceAfter: balanceAfter)
        }
        let moved = try db.query(
            "UPDATE orders SET status = 'PAYING', version = version + 1, updated_at = now() WHERE id = $1 AND status = 'PENDING'",
            [orderId])
        // Only the naive strategy can get here twice for one order; the loser must not deduct.
        guard moved.affectedRows == 1 else { throw DomainError.orderNotPayable(orderId: orderId, status: .paying) }
        // The intent to pay, durable with the deduction itself: recovery finds every interrupted one.
        try db.query(
            "INSERT INTO payment_intents (order_id, user_id, amount, status) VALUES ($1, $2, $3, 'open')",
            [orderId, order.userId, order.total])
        return Deduction(
            orderId: orderId, userId: order.userId, amount: order.total, items: order.items, balanceAfter: balanceAfter)
    }

    /// Gives back exactly what the deduction took. First the intent is recorded durably in its own
    /// transaction; then one transaction restores balance and stock, fails the order and marks the
    /// record done. If that fails, the record stays `pending` with the error: never lost.
    func compensate(_ deduction: Deduction, reason: String, probe: Probe) throws {
        try client.transaction(probe: probe) { db in
            try db.query(
                """
                INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'pending', $2)
                ON CONFLICT (order_id) DO NOTHING
                """, [deduction.orderId, reason])
        }
        do {
            try Compensation.run(orderId: deduction.orderId, client: client, probe: probe)
        } catch {
            try? Compensation.recordFailure(orderId: deduction.orderId, error: error, db: client.database)
            throw error
        }
    }
}

/// A compensation of an order neither PAYING nor PAYMENT_FAILED: nothing to give back, nothing done.
public struct CompensationNotApplicable: Error, CustomStringConvertible {
    public let orderId: Int
    public let status: String
    public var description: String { "order \(orderId) is \(status): nothing to compensate" }
}

/// Compensations: the durable record and the transaction that restores what a payment took.
public enum Compensation {
    /// Restores balance and stock of a PAYING order from its order items, marks it PAYMENT_FAILED
    /// and its compensation `succeeded`, all in one transaction. Idempotent: an order already
    /// PAYMENT_FAILED (compensated before) is left alone and its record closed. An order in any
    /// other state (PAID, say) has nothing this compensation could give back: it throws
    /// `CompensationNotApplicable` and the record stays `pending` for a person to look at, rather
    /// than `succeeded` for a restoration that never happened.
    public static func run(orderId: Int, client: CommerceClient, probe: Probe) throws {
        do {
            try client.transaction(probe: probe) { db in
                let order = try db.query("SELECT user_id, total_amount, status FROM orders WHERE id = $1 FOR UPDATE", [orderId])
                guard let userId = order.int(0, 0), let total = order.int(0, 1) else {
                    throw DomainError.notFound(entity: "order", id: orderId)
                }
                if order.string(0, 2) == OrderStatus.paying.rawValue {
                    let reference = "order:\(orderId)"
                    try db.query("UPDATE users SET balance = balance + $1, version = version + 1 WHERE id = $2", [total, userId])
                    try db.query(
                        "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'compensation', $3)",
                        [userId, total, reference])
                    let items = try db.query(
                        "SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id", [orderId])
                    for row in 0..<items.rowCount {
                        let productId = items.int(row, 0)!
                        let quantity = items.int(row, 1)!
                        try db.query(
                            "UPDATE products SET stock = stock + $1, version = version + 1 WHERE id = $2", [quantity, productId])
                        try db.query(
                            "INSERT INTO stock_ledger (product_id, delta, reason, reference) VALUES ($1, $2, 'compensation', $3)",
                            [productId, quantity, reference])
                    }
                    try db.query(
                        "UPDATE orders SET status = 'PAYMENT_FAILED', version = version + 1, updated_at = now() WHERE id = $1",
                        [orderId])
                } else if let status = order.string(0, 2), status != OrderStatus.paymentFailed.rawValue {
                    throw CompensationNotApplicable(orderId: orderId, status: status)
                }
                try db.query(
                    """
                    UPDATE compensations SET status = 'succeeded', attempts = attempts + 1, last_error = NULL,
                        updated_at = now() WHERE order_id = $1
                    """, [orderId])
                try db.query(
                    "UPDATE payment_intents SET status = 'compensated', settled_at = now() WHERE order_id = $1 AND status = 'open'",
                    [orderId])
                try client.faults.beforeCompensationCommit?(orderId)
            }
            probe.record(.compensation(succeeded: true))
        } catch {
            probe.record(.compensation(succeeded: false))
            throw error
        }
    }

    static func recordFailure(orderId: Int, error: any Error, db: PostgresConnection) throws {
        try db.reconnectIfNeeded()
        try db.query(
            """
            UPDATE compensations SET attempts = attempts + 1, last_error = $2, updated_at = now()
            WHERE order_id = $1 AND status = 'pending'
            """, [orderId, String(describing: error)])
    }

    /// The compensations recorded but not yet carried out.
    public static func pending(db: PostgresConnection) throws -> [Int] {
        let rows = try db.query("SELECT order_id FROM compensations WHERE status = 'pending' ORDER BY id")
        return (0..<rows.rowCount).compactMap { rows.int($0, 0) }
    }

    /// Retries every pending compensation once; returns how many succeeded.
    @discardableResult
    public static func retryPending(client: CommerceClient) throws -> Int {
        let probe = client.probe(.processPayment)
        var repaired = 0
        for orderId in try pending(db: client.database) {
            do {
                try run(orderId: orderId, client: client, probe: probe)
                repaired += 1
            } catch {
                try? recordFailure(orderId: orderId, error: error, db: client.database)
            }
        }
        return repaired
    }
}
