import LockProofPostgres

/// The final state a checker judges, wherever it lives: LockProof's own tables (`DatabaseState`,
/// in-process runs) or an implementation's, through its target file's `state` queries
/// (`TargetState`, issue 18). A read the source does not map returns nil; the checker then leaves
/// out the checks that need it (the ledgers) or, when its core input is missing, the run reports
/// it as not checked (`Target.fit`), never as a pass.
public protocol FinalState {
    /// user → balance.
    func balances() throws -> [Int: Int]?
    /// user → the balance ledger's sum, openings included (a target's ledger holds movements only:
    /// its reader adds the seeded opening).
    func balanceLedgerSums() throws -> [Int: Int]?
    /// user → charge rows in the balance ledger.
    func chargeEntriesByUser() throws -> [Int: Int]?
    /// reference (the idempotency key) → charge rows in the balance ledger.
    func chargeEntriesByReference() throws -> [String: Int]?
    /// order → payment and compensation rows in the balance ledger (reference `order:ID`).
    func orderLedgerEntries() throws -> [Int: (payments: Int, compensations: Int)]?
    func orders() throws -> [Int: FinalOrder]?
    /// Orders whose compensation is recorded but not carried out (none when not mapped).
    func pendingCompensationOrders() throws -> Set<Int>
    /// product → stock.
    func stock() throws -> [Int: Int]?
    /// product → the stock ledger's sum, openings included.
    func stockLedgerSums() throws -> [Int: Int]?
    func orderItems() throws -> [FinalOrderItem]?
    /// The coupon's total and issued counter.
    func coupon(_ id: Int) throws -> (total: Int, issued: Int)?
    /// user → rows of the coupon issued to them.
    func couponHolders(_ id: Int) throws -> [Int: Int]?
    func cartLines() throws -> [FinalCartLine]?
    /// user → daily spending limit (the sixth case).
    func spendingLimits() throws -> [Int: Int]?
    /// The spends summed per user and day, the day as the implementation counts it.
    func spendDays() throws -> [FinalSpendDay]?
}

public struct FinalOrder: Sendable, Equatable {
    public let user: Int
    public let total: Int
    /// LockProof's names: PENDING, PAYING, PAID, PAYMENT_FAILED, COMPLETED, CANCELLED.
    public let status: String
}

public struct FinalOrderItem: Sendable, Equatable {
    public let order: Int
    public let product: Int
    public let quantity: Int
}

public struct FinalCartLine: Sendable, Equatable {
    public let user: Int
    public let product: Int
    public let quantity: Int
}

/// One user's spends on one day: their sum and how many.
public struct FinalSpendDay: Sendable, Equatable {
    public let user: Int
    public let day: String
    public let amount: Int
    public let count: Int
}

/// LockProof's own tables: the queries the checkers ran before the seam, unchanged.
public struct DatabaseState: FinalState {
    public let db: PostgresConnection
    public init(db: PostgresConnection) { self.db = db }

    public func balances() throws -> [Int: Int]? { try db.pairs("SELECT id, balance FROM users") }

    public func balanceLedgerSums() throws -> [Int: Int]? {
        try db.pairs("SELECT user_id, sum(delta)::bigint FROM balance_ledger GROUP BY user_id")
    }

    public func chargeEntriesByUser() throws -> [Int: Int]? {
        try db.pairs("SELECT user_id, count(*) FROM balance_ledger WHERE reason = 'charge' GROUP BY user_id")
    }

    public func chargeEntriesByReference() throws -> [String: Int]? {
        let rows = try db.query("SELECT reference, count(*) FROM balance_ledger WHERE reason = 'charge' GROUP BY reference")
        var result: [String: Int] = [:]
        for row in 0..<rows.rowCount {
            if let reference = rows.string(row, 0) { result[reference] = rows.int(row, 1) ?? 0 }
        }
        return result
    }

    public func orderLedgerEntries() throws -> [Int: (payments: Int, compensations: Int)]? {
        let rows = try db.query(
            """
            SELECT reference, count(*) FILTER (WHERE reason = 'payment'), count(*) FILTER (WHERE reason = 'compensation')
            FROM balance_ledger WHERE reason IN ('payment', 'compensation') GROUP BY reference
            """)
        var ledger: [Int: (payments: Int, compensations: Int)] = [:]
        for row in 0..<rows.rowCount {
            guard let reference = rows.string(row, 0), reference.hasPrefix("order:"), let order = Int(reference.dropFirst(6)) else {
                continue
            }
            ledger[order] = (rows.int(row, 1) ?? 0, rows.int(row, 2) ?? 0)
        }
        return ledger
    }

    public func orders() throws -> [Int: FinalOrder]? {
        let rows = try db.query("SELECT id, user_id, total_amount, status FROM orders")
        var result: [Int: FinalOrder] = [:]
        for row in 0..<rows.rowCount {
            result[rows.int(row, 0)!] = FinalOrder(
                user: rows.int(row, 1) ?? 0, total: rows.int(row, 2) ?? 0, status: rows.string(row, 3) ?? "")
        }
        return result
    }

    public func pendingCompensationOrders() throws -> Set<Int> {
        Set(try db.pairs("SELECT order_id, id FROM compensations WHERE status = 'pending'").keys)
    }

    public func stock() throws -> [Int: Int]? { try db.pairs("SELECT id, stock FROM products") }

    public func stockLedgerSums() throws -> [Int: Int]? {
        try db.pairs("SELECT product_id, sum(delta)::bigint FROM stock_ledger GROUP BY product_id")
    }

    public func orderItems() throws -> [FinalOrderItem]? {
        let rows = try db.query("SELECT order_id, product_id, quantity FROM order_items")
        return (0..<rows.rowCount).map { FinalOrderItem(order: rows.int($0, 0)!, product: rows.int($0, 1)!, quantity: rows.int($0, 2)!) }
    }

    public func coupon(_ id: Int) throws -> (total: Int, issued: Int)? {
        let coupon = try db.query("SELECT total_quantity, issued_quantity FROM coupons WHERE id = $1", [id])
        return (coupon.int(0, 0) ?? 0, coupon.int(0, 1) ?? 0)
    }

    public func couponHolders(_ id: Int) throws -> [Int: Int]? {
        try db.pairs("SELECT user_id, count(*) FROM user_coupons WHERE coupon_id = $1 GROUP BY user_id", [id])
    }

    public func cartLines() throws -> [FinalCartLine]? {
        let rows = try db.query("SELECT user_id, product_id, quantity FROM cart_items")
        return (0..<rows.rowCount).map { FinalCartLine(user: rows.int($0, 0)!, product: rows.int($0, 1)!, quantity: rows.int($0, 2)!) }
    }

    public func spendingLimits() throws -> [Int: Int]? { try db.pairs("SELECT user_id, daily_limit FROM spending_limits") }

    public func spendDays() throws -> [FinalSpendDay]? {
        let rows = try db.query(
            """
            SELECT user_id, day::text, sum(amount)::bigint, count(*)::bigint FROM spends
            GROUP BY user_id, day ORDER BY user_id, day
            """)
        return (0..<rows.rowCount).map {
            FinalSpendDay(user: rows.int($0, 0)!, day: rows.string($0, 1) ?? "?", amount: rows.int($0, 2) ?? 0, count: rows.int($0, 3) ?? 0)
        }
    }
}
