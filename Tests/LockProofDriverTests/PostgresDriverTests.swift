import LockProofCommerce
import LockProofPostgres
import LockProofTestSupport
import XCTest

/// Every typed error is raised for real by the server.
final class PostgresDriverTests: XCTestCase {
    override func setUpWithError() throws { try TestServers.reset() }

    private func user(balance: Int = 100) throws -> Int {
        try SeedData(db: TestServers.database()).users(count: 1, balance: balance)[0]
    }

    func testBoundParametersRoundTripHostileText() throws {
        let db = try TestServers.database()
        let hostile = "O'Brien\"; DROP TABLE users; --\n\u{1F512}"
        let result = try db.query("SELECT $1::text, $2::bigint, $3::bool, $4::text IS NULL", [hostile, Int64.max, true, String?.none])
        XCTAssertEqual(result.string(0, 0), hostile)
        XCTAssertEqual(result.string(0, 1), String(Int64.max))
        XCTAssertEqual(result.bool(0, 2), true)
        XCTAssertEqual(result.bool(0, 3), true)
        XCTAssertEqual(try db.query("SELECT count(*) FROM users").int(0, 0), 0, "the users table survived")
    }

    func testTransactionRollsBackWhenBodyThrows() throws {
        let db = try TestServers.database()
        let id = try user()
        struct Boom: Error {}
        XCTAssertThrowsError(
            try db.transaction { db in
                try db.query("UPDATE users SET balance = 0 WHERE id = $1", [id])
                throw Boom()
            }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [id]).int(0, 0), 100)
        XCTAssertFalse(db.inTransaction)
    }

    func testUniqueViolationNamesItsConstraint() throws {
        let db = try TestServers.database()
        let id = try user()
        let coupon = try SeedData(db: db).coupon(totalQuantity: 5)
        try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2)", [id, coupon])
        XCTAssertThrowsError(try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2)", [id, coupon])) {
            let error = $0 as? PostgresError
            XCTAssertEqual(error?.kind, .uniqueViolation)
            XCTAssertEqual(error?.sqlState, "23505")
            XCTAssertEqual(error?.constraint, "user_coupons_user_coupon_unique")
        }
    }

    func testCheckConstraintKeepsBalanceNonNegative() throws {
        let db = try TestServers.database()
        let id = try user(balance: 10)
        XCTAssertThrowsError(try db.query("UPDATE users SET balance = balance - 11 WHERE id = $1", [id])) {
            XCTAssertEqual(($0 as? PostgresError)?.kind, .checkViolation)
            XCTAssertEqual(($0 as? PostgresError)?.constraint, "users_balance_non_negative")
        }
    }

    func testSerializationFailureUnderRepeatableRead() throws {
        let first = try TestServers.database()
        let second = try TestServers.database()
        let id = try user()
        XCTAssertThrowsError(
            try first.transaction(isolation: .repeatableRead) { db in
                _ = try db.query("SELECT balance FROM users WHERE id = $1", [id])
                try second.query("UPDATE users SET balance = balance + 1 WHERE id = $1", [id])
                try db.query("UPDATE users SET balance = balance + 1 WHERE id = $1", [id])
            }) {
            XCTAssertEqual(($0 as? PostgresError)?.kind, .serializationFailure)
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "40001")
        }
        XCTAssertEqual(try first.query("SELECT balance FROM users WHERE id = $1", [id]).int(0, 0), 101)
    }

    func testLockNotAvailableAfterLockTimeout() throws {
        let holder = try TestServers.database()
        let waiter = try TestServers.database()
        let id = try user()
        try waiter.setLockTimeout(milliseconds: 50)
        try holder.transaction { holder in
            try holder.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [id])
            XCTAssertThrowsError(try waiter.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [id])) {
                XCTAssertEqual(($0 as? PostgresError)?.kind, .lockNotAvailable)
                XCTAssertEqual(($0 as? PostgresError)?.sqlState, "55P03")
            }
        }
    }

    func testQueryCanceledByStatementTimeout() throws {
        let db = try TestServers.database()
        try db.setStatementTimeout(milliseconds: 50)
        XCTAssertThrowsError(try db.query("SELECT pg_sleep(5)")) {
            XCTAssertEqual(($0 as? PostgresError)?.kind, .queryCanceled)
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "57014")
        }
        try db.setStatementTimeout(milliseconds: 0)
        XCTAssertEqual(try db.query("SELECT 1").int(0, 0), 1, "the session is still usable")
    }

    func testDeadlockIsDetectedAndTyped() throws {
        let a = try user()
        let b = try user()
        let results = try runConcurrently(clients: 2, timeout: 30, setup: { _ in try TestServers.database() }) {
            index, db -> Bool in
            let (first, second) = index == 0 ? (a, b) : (b, a)
            try db.transaction { db in
                try db.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [first])
                try db.query("SELECT pg_sleep(0.3)")
                try db.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [second])
            }
            return true
        }
        let errors = results.compactMap { $0.error as? PostgresError }
        XCTAssertEqual(errors.count, 1, "exactly one side is chosen as the deadlock victim: \(results)")
        XCTAssertEqual(errors.first?.kind, .deadlock)
        XCTAssertEqual(errors.first?.sqlState, "40P01")
    }

    func testTerminatedSessionIsConnectionLostAndReconnects() throws {
        let victim = try TestServers.database()
        let admin = try TestServers.database()
        try admin.query("SELECT pg_terminate_backend($1)", [Int(victim.backendPID)])
        XCTAssertThrowsError(try victim.query("SELECT 1")) {
            XCTAssertEqual(($0 as? PostgresError)?.kind, .connectionLost, "\($0)")
        }
        XCTAssertFalse(victim.isConnected)
        try victim.reconnectIfNeeded()
        XCTAssertEqual(try victim.query("SELECT $1::int + 1", [41]).int(0, 0), 42)
    }

    func testUnreachableServerIsConnectionFailedWithoutPassword() throws {
        XCTAssertThrowsError(try PostgresConnection("postgresql://someone:s3cret@127.0.0.1:1/none?connect_timeout=2")) {
            let error = $0 as? PostgresError
            XCTAssertEqual(error?.kind, .connectionFailed)
            XCTAssertFalse(String(describing: $0).contains("s3cret"), "the password is never printed")
        }
    }

    func testSQLStateClassification() {
        XCTAssertEqual(PostgresError.kind(forSQLState: "08006"), .connectionLost)
        XCTAssertEqual(PostgresError.kind(forSQLState: "57P01"), .connectionLost)
        XCTAssertEqual(PostgresError.kind(forSQLState: "42P01"), .other)
    }

    func testSchemaApplyIsIdempotent() throws {
        let db = try TestServers.database()
        try Schema.apply(db)
        try Schema.apply(db)
        let tables = try db.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
            ["{" + Schema.tables.joined(separator: ",") + "}"])
        XCTAssertEqual(tables.int(0, 0), Schema.tables.count)
    }
}
