import LockProofPostgres

/// The tables the five cases work on, and the marker that says a database is LockProof's.
///
/// LockProof writes only into a database it owns: one where it created its tables itself, into a
/// schema that had none of them, and wrote the `lockproof_schema` marker (version, when, by which
/// build) in the same transaction. `apply` creates the schema in such an empty database, or checks
/// that the database is LockProof's (`Schema.ownership`), and refuses anything else before
/// writing: LockProof's table names without the marker, other tables referencing LockProof's, a
/// marker of a version this build does not know. `reset` empties exactly LockProof's tables.
public enum Schema {
    public static let tables = [
        "gateway_charges", "payment_intents", "compensations", "idempotency_keys", "stock_ledger", "balance_ledger", "cart_items",
        "order_items", "orders", "user_coupons", "coupons", "products", "users",
    ] + CaseName.allCases.flatMap { $0.descriptor.storage.tables }  // a case's own tables (`CaseStorage`)

    /// The marker table: one row, written when LockProof created the schema.
    public static let markerTable = "lockproof_schema"

    /// The schema version this build creates. Version 1: the tables below, fence_token included.
    public static let version = 1

    /// The versions this build can work on (no migration exists yet: a newer one is refused).
    public static let knownVersions: Set<Int> = [1]

    /// Serializes creating the schema across processes (CREATE TABLE IF NOT EXISTS is not atomic).
    static let creationLockKey = Int64(0x4C6F_636B_5072)

    /// The schema unqualified names resolve to, as an oid in SQL (by name: no identifier parsing).
    static let ourSchema = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"

    /// LockProof's tables and the marker: every name LockProof would create.
    public static var ownedNames: [String] { tables + [markerTable] }

    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS users (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            balance BIGINT NOT NULL DEFAULT 0 CONSTRAINT users_balance_non_negative CHECK (balance >= 0),
            version BIGINT NOT NULL DEFAULT 0,
            -- Fencing: the newest fencing token the database accepted for this user row; a write
            -- carrying that one or an older one is refused (Kleppmann; each holding claims its token once).
            fence_token BIGINT NOT NULL DEFAULT 0
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
        """
        CREATE TABLE IF NOT EXISTS lockproof_schema (
            version INT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            created_by TEXT NOT NULL
        )
        """,
    ] + CaseName.allCases.flatMap { $0.descriptor.storage.statements }


    /// Creates the schema and its marker in a database that has none of LockProof's tables, or
    /// checks that the database is LockProof's; throws `DatabaseNotOwned` (before anything is
    /// written) otherwise. In a marked database it writes nothing and takes no lock but the catalog
    /// reads'. Safe from several processes at once: creation runs under an advisory transaction
    /// lock and looks again once it holds it.
    public static func apply(_ connection: PostgresConnection) throws {
        let found = try ownership(connection)
        try found.refuseIfNotOwned()
        guard !found.isComplete else { return }
        try connection.transaction { conn in
            // Bounded: another process creating the schema takes well under a second; a session
            // stuck holding this lock (or a lock on the catalog) ends in an error, not a hang.
            try conn.execute("SET LOCAL lock_timeout = '30s'")
            try conn.query("SELECT pg_advisory_xact_lock($1)", [creationLockKey])
            let again = try ownership(conn)
            try again.refuseIfNotOwned()
            guard !again.isComplete else { return }
            for statement in statements { try conn.execute(statement) }
            if again.markerVersions.isEmpty {
                try conn.query(
                    "INSERT INTO lockproof_schema (version, created_by) VALUES ($1, $2)",
                    [version, "lockproof \(LockProofRelease.version)"])
            }
        }
    }

    /// What the catalog says about LockProof's names in the schema where unqualified names resolve
    /// (`current_schema()`). Reads the catalog and the marker only: no lock another session notices.
    public static func ownership(_ connection: PostgresConnection) throws -> SchemaOwnership {
        let names = "{" + ownedNames.joined(separator: ",") + "}"
        let where_ = try connection.query("SELECT current_schema(), current_database()")
        var found = SchemaOwnership(schema: where_.string(0, 0), database: where_.string(0, 1) ?? "?")
        guard found.schema != nil else { return found }
        let present = try connection.query(
            """
            SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = \(ourSchema) AND c.relname = ANY($1::text[])
            ORDER BY c.relname
            """, [names])
        let presentNames = (0..<present.rowCount).compactMap { present.string($0, 0) }
        found.tablesPresent = presentNames.filter { $0 != markerTable }
        found.markerPresent = presentNames.contains(markerTable)
        // Foreign keys from tables that are not LockProof's into LockProof's, and tables that
        // inherit from LockProof's (TRUNCATE of a parent reaches them): both would be touched.
        let references = try connection.query(
            """
            SELECT format('%s (constraint %s, references %s)', src.oid::regclass, con.conname, dst.relname)
            FROM pg_constraint con
            JOIN pg_class src ON src.oid = con.conrelid
            JOIN pg_class dst ON dst.oid = con.confrelid
            WHERE con.contype = 'f' AND dst.relnamespace = \(ourSchema) AND dst.relname = ANY($1::text[])
              AND NOT (src.relnamespace = \(ourSchema) AND src.relname = ANY($1::text[]))
            UNION ALL
            SELECT format('%s (inherits from %s)', child.oid::regclass, parent.relname)
            FROM pg_inherits i
            JOIN pg_class child ON child.oid = i.inhrelid
            JOIN pg_class parent ON parent.oid = i.inhparent
            WHERE parent.relnamespace = \(ourSchema) AND parent.relname = ANY($1::text[])
              AND NOT (child.relnamespace = \(ourSchema) AND child.relname = ANY($1::text[]))
            ORDER BY 1
            """, [names])
        found.foreignReferences = (0..<references.rowCount).compactMap { references.string($0, 0) }
        if found.markerPresent {
            // Its shape and the privilege to read it are asked of the catalog first, so that reading
            // it cannot fail (and abort the creation transaction `apply` reads it in).
            let shape = try connection.query(
                """
                SELECT has_table_privilege(c.oid, 'SELECT'),
                       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped AND
                           ((a.attname = 'version' AND a.atttypid = 'int4'::regtype) OR
                            (a.attname = 'created_at' AND a.atttypid = 'timestamptz'::regtype) OR
                            (a.attname = 'created_by' AND a.atttypid = 'text'::regtype)))
                FROM pg_class c WHERE c.relnamespace = \(ourSchema) AND c.relname = $1 AND c.relkind = 'r'
                """, [markerTable])
            if shape.rowCount != 1 || shape.int(0, 1) != 3 {
                found.markerMalformed = "it lacks the columns version integer, created_at timestamptz, created_by text"
            } else if shape.bool(0, 0) != true {
                found.markerUnreadable = "SELECT on table \(markerTable)"
            } else {
                let rows = try connection.query("SELECT version, created_at::text, created_by FROM lockproof_schema ORDER BY created_at")
                found.markerVersions = (0..<rows.rowCount).compactMap { rows.int($0, 0) }
                if rows.rowCount > 0 { found.markerCreated = "\(rows.string(0, 1) ?? "?") by \(rows.string(0, 2) ?? "?")" }
            }
        }
        return found
    }

    /// What the database user cannot do of what a run does, asked of the catalog (no statement is
    /// tried, so no lock is taken that another session could notice): on a LockProof database,
    /// SELECT/INSERT/UPDATE/DELETE/TRUNCATE on every table and ownership of their id sequences
    /// (TRUNCATE … RESTART IDENTITY needs it); on an empty one, CREATE in the schema. Returns a
    /// sentence per missing privilege; empty when all is there. Throws `DatabaseNotOwned` for a
    /// database that is not LockProof's.
    public static func missingPrivileges(_ connection: PostgresConnection) throws -> [String] {
        let found = try ownership(connection)
        if let unreadable = found.markerUnreadable { return [unreadable] }
        try found.refuseIfNotOwned()
        var missing: [String] = []
        if !found.isComplete {
            let create = try connection.query("SELECT has_schema_privilege(current_schema(), 'CREATE')")
            if create.bool(0, 0) != true { missing.append("CREATE on schema \(found.schema ?? "?") (to create LockProof's tables)") }
            if found.tablesPresent.isEmpty { return missing }
        }
        let privileges = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]
        let rows = try connection.query(
            """
            SELECT c.relname, \(privileges.map { "has_table_privilege(c.oid, '\($0)')" }.joined(separator: ", "))
            FROM pg_class c
            WHERE c.relnamespace = \(ourSchema) AND c.relname = ANY($1::text[])
            ORDER BY c.relname
            """, ["{" + tables.joined(separator: ",") + "}"])
        for row in 0..<rows.rowCount {
            let lacking = privileges.enumerated().filter { rows.bool(row, $0.offset + 1) != true }.map(\.element)
            if !lacking.isEmpty, let table = rows.string(row, 0) {
                missing.append("\(lacking.joined(separator: ", ")) on table \(table)")
            }
        }
        let sequences = try connection.query(
            """
            SELECT s.relname FROM pg_depend d
            JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_class t ON t.oid = d.refobjid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND t.relnamespace = \(ourSchema) AND t.relname = ANY($1::text[])
              AND NOT pg_has_role(s.relowner, 'USAGE')
            ORDER BY s.relname
            """, ["{" + tables.joined(separator: ",") + "}"])
        if sequences.rowCount > 0 {
            let names = (0..<sequences.rowCount).compactMap { sequences.string($0, 0) }
            missing.append("ownership of sequences \(names.joined(separator: ", ")) (to restart ids when emptying the tables)")
        }
        return missing
    }

    /// Empties exactly LockProof's tables (ONLY: no table inheriting from them; no CASCADE: no
    /// table referencing them), restarting ids, in a database `apply` found to be LockProof's.
    public static func reset(_ connection: PostgresConnection) throws {
        try apply(connection)
        try connection.execute("TRUNCATE \(tables.map { "ONLY \($0)" }.joined(separator: ", ")) RESTART IDENTITY")
    }
}
