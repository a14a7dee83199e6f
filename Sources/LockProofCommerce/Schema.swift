import LockProofPostgres

/// The tables the five cases work on. `apply` is idempotent and safe to run from several
/// processes at once; `reset` empties every table for a clean run.
public enum Schema {
    public static let tables = [
        "gateway_charges", "payment_intents", "compensations", "idempotency_keys", "stock_ledger", "balance_ledger", "cart_items",
        "order_items", "orders", "user_coupons", "coupons", "products", "users",
    ]

    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS users (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            balance BIGINT NOT NULL DEFAULT 0 CONSTRAINT users_balance_non_negative CHECK (balance >= 0),
            version BIGINT NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS products (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            price BIGINT NOT NULL CONSTRAINT products_price_non_negative CHECK (price >= 0),
            stock BIGINT NOT NULL CONSTRAINT products_stock_non_negative CHECK (stock >= 0),
            version BIGINT NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS coupons (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            total_quantity INT NOT NULL CONSTRAINT coupons_total_non_negative CHECK (total_quantity >= 0),
            issued_quantity INT NOT NULL DEFAULT 0 CONSTRAINT coupons_issued_non_negative CHECK (issued_quantity >= 0),
            version BIGINT NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS user_coupons (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id),
            coupon_id BIGINT NOT NULL REFERENCES coupons (id),
            issued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT user_coupons_user_coupon_unique UNIQUE (user_id, coupon_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS orders (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id),
            status TEXT NOT NULL CONSTRAINT orders_status_known
                CHECK (status IN ('PENDING', 'PAYING', 'PAID', 'PAYMENT_FAILED', 'COMPLETED', 'CANCELLED')),
            total_amount BIGINT NOT NULL CONSTRAINT orders_total_non_negative CHECK (total_amount >= 0),
            version BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS order_items (
            id BIGSERIAL PRIMARY KEY,
            order_id BIGINT NOT NULL REFERENCES orders (id),
            product_id BIGINT NOT NULL REFERENCES products (id),
            quantity INT NOT NULL CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
            unit_price BIGINT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS order_items_order_id ON order_items (order_id)",
        """
        CREATE TABLE IF NOT EXISTS cart_items (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id),
            product_id BIGINT NOT NULL REFERENCES products (id),
            quantity INT NOT NULL CONSTRAINT cart_items_quantity_non_negative CHECK (quantity >= 0),
            version BIGINT NOT NULL DEFAULT 0,
            CONSTRAINT cart_items_user_product_unique UNIQUE (user_id, product_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS balance_ledger (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id),
            delta BIGINT NOT NULL,
            reason TEXT NOT NULL CONSTRAINT balance_ledger_reason_known
                CHECK (reason IN ('opening', 'charge', 'payment', 'compensation')),
            reference TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX IF NOT EXISTS balance_ledger_user_id ON balance_ledger (user_id)",
        """
        CREATE TABLE IF NOT EXISTS stock_ledger (
            id BIGSERIAL PRIMARY KEY,
            product_id BIGINT NOT NULL REFERENCES products (id),
            delta BIGINT NOT NULL,
            reason TEXT NOT NULL CONSTRAINT stock_ledger_reason_known
                CHECK (reason IN ('opening', 'payment', 'compensation')),
            reference TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX IF NOT EXISTS stock_ledger_product_id ON stock_ledger (product_id)",
        """
        CREATE TABLE IF NOT EXISTS idempotency_keys (
            key TEXT PRIMARY KEY,
            operation TEXT NOT NULL CONSTRAINT idempotency_keys_operation_known CHECK (operation IN ('charge', 'payment')),
            reference TEXT NOT NULL,
            result TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS compensations (
            id BIGSERIAL PRIMARY KEY,
            order_id BIGINT NOT NULL UNIQUE REFERENCES orders (id),
            status TEXT NOT NULL CONSTRAINT compensations_status_known CHECK (status IN ('pending', 'succeeded')),
            reason TEXT NOT NULL,
            attempts INT NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        // Fencing: the newest fencing token the database accepted for a user row; a write carrying
        // that one or an older one is refused (Kleppmann; each holding claims its token once). ADD COLUMN IF NOT EXISTS upgrades older databases.
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS fence_token BIGINT NOT NULL DEFAULT 0",
        // Durable payments: written in the deduction's own transaction, so that no crash can leave
        // money taken without a record. `open` until the order is PAID or compensated.
        """
        CREATE TABLE IF NOT EXISTS payment_intents (
            order_id BIGINT PRIMARY KEY REFERENCES orders (id),
            user_id BIGINT NOT NULL REFERENCES users (id),
            amount BIGINT NOT NULL CONSTRAINT payment_intents_amount_non_negative CHECK (amount >= 0),
            status TEXT NOT NULL CONSTRAINT payment_intents_status_known CHECK (status IN ('open', 'paid', 'compensated')),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            settled_at TIMESTAMPTZ
        )
        """,
        "CREATE INDEX IF NOT EXISTS payment_intents_open ON payment_intents (order_id) WHERE status = 'open'",
        // The simulated gateway's own records, by order id (a real gateway keeps them by idempotency
        // key). Not part of the shop's data: no foreign key, written outside the shop's transactions.
        """
        CREATE TABLE IF NOT EXISTS gateway_charges (
            order_id BIGINT PRIMARY KEY,
            amount BIGINT NOT NULL,
            outcome TEXT NOT NULL CONSTRAINT gateway_charges_outcome_known CHECK (outcome IN ('approved', 'declined', 'voided')),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
    ]

    /// Creates what is missing. Serialized by an advisory lock so that concurrent callers do not
    /// race on CREATE TABLE IF NOT EXISTS (which is not atomic in PostgreSQL).
    public static func apply(_ connection: PostgresConnection) throws {
        try connection.transaction { conn in
            try conn.query("SELECT pg_advisory_xact_lock($1)", [Int64(0x4C6F_636B_5072)])
            for statement in statements { try conn.execute(statement) }
        }
    }

    /// What the database user cannot do of what a run does, found before anything is written: the
    /// schema statements and the TRUNCATE of `reset` are tried in a transaction that is rolled
    /// back (so PostgreSQL itself decides what they need), and the row privileges every case uses
    /// are asked of the catalog. Returns a sentence per missing privilege; empty when all is there.
    public static func missingPrivileges(_ connection: PostgresConnection) throws -> [String] {
        var missing: [String] = []
        try connection.execute("BEGIN")
        do {
            try connection.query("SELECT pg_advisory_xact_lock($1)", [Int64(0x4C6F_636B_5072)])
            for statement in statements { try connection.execute(statement) }
            try connection.execute("TRUNCATE \(tables.joined(separator: ", ")) RESTART IDENTITY CASCADE")
            let rows = try connection.query(
                """
                SELECT t, has_table_privilege(t, 'SELECT'), has_table_privilege(t, 'INSERT'),
                       has_table_privilege(t, 'UPDATE'), has_table_privilege(t, 'DELETE')
                FROM unnest($1::text[]) AS t
                """, ["{" + tables.joined(separator: ",") + "}"])
            for row in 0..<rows.rowCount {
                let lacking = ["SELECT", "INSERT", "UPDATE", "DELETE"].enumerated()
                    .filter { rows.bool(row, $0.offset + 1) != true }.map(\.element)
                if !lacking.isEmpty, let table = rows.string(row, 0) {
                    missing.append("\(lacking.joined(separator: ", ")) on table \(table)")
                }
            }
        } catch let error as PostgresError where error.sqlState == "42501" {
            missing.append(error.message)
        } catch {
            connection.rollbackQuietly()
            throw error
        }
        connection.rollbackQuietly()
        return missing
    }

    /// Applies the schema and empties every table, restarting ids.
    public static func reset(_ connection: PostgresConnection) throws {
        try apply(connection)
        try connection.execute("TRUNCATE \(tables.joined(separator: ", ")) RESTART IDENTITY CASCADE")
    }
}
