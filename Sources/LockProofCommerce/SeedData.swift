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

    /// `count` PENDING orders, set-based so that pools of tens of thousands seed in a moment.
    /// Order n (by id) belongs to user n mod users and holds products n … n + itemsPerOrder − 1,
    /// `quantity` of each at `price`. Returns their ids in ascending order.
    public func pendingOrders(count: Int, users: [Int], products: [Int], itemsPerOrder: Int, quantity: Int, price: Int) throws -> [Int] {
        try db.transaction { db in
            let made = try db.query(
                """
                WITH made AS (
                    INSERT INTO orders (user_id, status, total_amount)
                    SELECT ($1::bigint[])[((n - 1) % $2) + 1], 'PENDING', $3 FROM generate_series(1, $4) AS n
                    RETURNING id)
                SELECT id FROM made ORDER BY id
                """,
                [postgresArray(users), users.count, itemsPerOrder * quantity * price, count])
            let ids = (0..<made.rowCount).map { made.int($0, 0)! }
            try db.query(
                """
                INSERT INTO order_items (order_id, product_id, quantity, unit_price)
                SELECT o.id, ($1::bigint[])[((o.n - 1 + k) % $2) + 1], $3, $4
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM orders WHERE id = ANY($5::bigint[])) AS o,
                     generate_series(0, $6 - 1) AS k
                """,
                [postgresArray(products), products.count, quantity, price, postgresArray(ids), itemsPerOrder])
            return ids
        }
    }
}

/// A bigint[] literal, bound as one text parameter.
public func postgresArray(_ ids: [Int]) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }
