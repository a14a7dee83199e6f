import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofTestSupport
import XCTest

class CommerceTestCase: XCTestCase {
    var db: PostgresConnection!
    var seed: SeedData { SeedData(db: db) }

    override func setUpWithError() throws {
        try TestServers.reset()
        db = try TestServers.database()
    }

    func scalar(_ sql: String, _ parameters: [any PostgresBindable] = []) throws -> Int {
        try XCTUnwrap(db.query(sql, parameters).int(0, 0), sql)
    }

    /// A short think time between read and write, the same for every strategy, so that the races a
    /// broken strategy lets through happen on every run.
    static func settings(thinkSeconds: Double = 0.002) -> CommerceSettings {
        var settings = CommerceSettings()
        settings.processingDelaySeconds = thinkSeconds
        settings.retry = RetryPolicy(maxAttempts: 10, baseDelay: 0.002, maxDelay: 0.05, jitter: true)
        // These tests judge invariants, not latency: 200 clients queued on one Redis lock must not
        // time out just because a loaded machine runs each holder slowly (the run's own timeout
        // still bounds a hang).
        settings.lock.waitMilliseconds = 60_000
        return settings
    }

    /// Creates a PENDING order of one product directly.
    func order(userId: Int, productId: Int, quantity: Int, unitPrice: Int) throws -> Int {
        let id = try scalar(
            "INSERT INTO orders (user_id, status, total_amount) VALUES ($1, 'PENDING', $2) RETURNING id",
            [userId, quantity * unitPrice])
        try db.query(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4)",
            [id, productId, quantity, unitPrice])
        return id
    }

    func ledgerSum(userId: Int) throws -> Int {
        try scalar("SELECT COALESCE(sum(delta), 0)::bigint FROM balance_ledger WHERE user_id = $1", [userId])
    }

    func balance(_ userId: Int) throws -> Int { try scalar("SELECT balance FROM users WHERE id = $1", [userId]) }
    func stock(_ productId: Int) throws -> Int { try scalar("SELECT stock FROM products WHERE id = $1", [productId]) }
}

func isDomainError(_ error: (any Error)?, _ predicate: (DomainError) -> Bool) -> Bool {
    guard let error = error as? DomainError else { return false }
    return predicate(error)
}
