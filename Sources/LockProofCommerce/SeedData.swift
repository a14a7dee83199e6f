import LockProofPostgres

/// Creates the initial rows a test or a scenario starts from. Every opening balance and stock is
/// written to the ledgers, so that a ledger sum always equals the live value.
public struct SeedData {
    public let db: PostgresConnection
    public init(db: PostgresConnection) { self.db = db }

    /// Creates `count` users with `balance` each; returns their ids in ascending order.
    @discardableResult
    public func users(count: Int, balance: Int) throws -> [Int] {
        try db.transaction { db in
            let rows = try db.query(
                "INSERT INTO users (name, balance) SELECT 'user-' || n, $2 FROM generate_series(1, $1) AS n RETURNING id",
                [count, balance])
            let ids = (0..<rows.rowCount).map { rows.int($0, 0)! }.sorted()
            try db.query(
                """
                INSERT INTO balance_ledger (user_id, delta, reason, reference)
                SELECT id, balance, 'opening', 'seed' FROM users WHERE id = ANY($1::bigint[]) AND balance <> 0
                """, [postgresArray(ids)])
            return ids
        }
    }

    @discardableResult
    public func products(count: Int, price: Int, stock: Int) throws -> [Int] {
        try db.transaction { db in
            let rows = try db.query(
                "INSERT INTO products (name, price, stock) SELECT 'product-' || n, $2, $3 FROM generate_series(1, $1) AS n RETURNING id",
                [count, price, stock])
            let ids = (0..<rows.rowCount).map { rows.int($0, 0)! }.sorted()
            try db.query(
                """
                INSERT INTO stock_ledger (product_id, delta, reason, reference)
                SELECT id, stock, 'opening', 'seed' FROM products WHERE id = ANY($1::bigint[]) AND stock <> 0
                """, [postgresArray(ids)])
            return ids
        }
    }

    /// Opens a cart line of `quantity` for every user and product (peer suites start lines at 1).
    public func cartLines(users: [Int], products: [Int], quantity: Int) throws {
        try db.query(
            """
            INSERT INTO cart_items (user_id, product_id, quantity)
            SELECT u, p, $3 FROM unnest($1::bigint[]) AS u, unnest($2::bigint[]) AS p
            """, [postgresArray(users), postgresArray(products), quantity])
    }

    @discardableResult
    public func coupon(totalQuantity: Int) throws -> Int {
        try db.query("INSERT INTO coupons (name, total_quantity) VALUES ('coupon', $1) RETURNING id", [totalQuantity])
            .int(0, 0)!
    }
}

/// A bigint[] literal, bound as one text parameter.
public func postgresArray(_ ids: [Int]) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }
