import LockProofLocking
import LockProofPostgres

/// Case 6: spend under a daily limit. A user's spends are rows of their own (`spends`); the sum a
/// user spent on one day must stay at or under the user's daily limit (`spending_limits`).
///
/// The classic write skew: two transactions each read the day's sum, each find room for their
/// spend, each insert a new row, and both commit. No row is ever written twice, so neither a
/// version column nor REPEATABLE READ's first-updater-wins rule sees a conflict; only something that
/// serializes a user's spends (a lock) or SERIALIZABLE's read-write dependency tracking stops it.
public enum DailySpendStrategy: String, Sendable, CaseIterable, Codable {
    /// The seed's style: Redis lock `spend:user:{id}` around a READ COMMITTED transaction that
    /// locks the user row, reads the day's sum, checks the limit and inserts. The row lock is what
    /// keeps the check alone when the Redis circuit breaker opens (no Redis lock taken) while other
    /// spends still hold the Redis lock; under the Redis lock it is uncontended.
    case seed
    /// `SELECT … FOR UPDATE` on the user row, then the check and the insert (READ COMMITTED).
    case pessimistic
    /// SERIALIZABLE with no lock: PostgreSQL aborts one of two skewed transactions with 40001 and
    /// the whole transaction is retried (the shared retry policy, exponential backoff).
    case serializable
    /// `pg_advisory_xact_lock` on the user (released at commit or rollback), then the check and the
    /// insert (READ COMMITTED).
    case advisory
    /// The negative control: REPEATABLE READ and no lock. Each transaction reads the day's sum in
    /// its snapshot; concurrent spends insert different rows, so both commit: write skew.
    case repeatableReadNoLock = "repeatable-read-no-lock"
    /// The negative control of the daily-limit checker's refusals (issue 21): `FOR UPDATE` on the
    /// user, but the check is off by one (`spent + amount < limit`), so a spend that would bring the
    /// day exactly to the limit is refused although it fits.
    case limitReachedRefused = "limit-reached-refused"
    /// The negative control of the rows' upper bound: `FOR UPDATE` on the user, the check, and the
    /// spend inserted twice (the insert retried after it succeeded), acknowledged once.
    case recordedTwice = "recorded-twice"
    /// The negative control of the rows' lower bound: `FOR UPDATE` on the user, the check and the
    /// insert inside a savepoint that is then rolled back (a dry-run path left on): the spend is
    /// acknowledged and never stored.
    case notSaved = "not-saved"
    /// The negative control of the daily-limit checker's "every spend is under a limit" alone:
    /// `FOR UPDATE` on the user, but the limit is read with `DELETE … RETURNING` (a one-shot read
    /// copied from the voucher code), and a user with no limit row is let through ("no limit
    /// set"). Each spend is checked against the limit it found, stored once and acknowledged once;
    /// after a user's first spend the user has no limit row.
    case limitConsumed = "limit-consumed"
}

/// The spend would take the day's total past the user's daily limit. Nothing was written.
public struct DailyLimitExceeded: BusinessRefusal, Equatable, CustomStringConvertible, Sendable {
    public let userId: Int
    /// The day's total the transaction saw.
    public let spentToday: Int
    public let limit: Int
    public let requested: Int

    public init(userId: Int, spentToday: Int, limit: Int, requested: Int) {
        self.userId = userId
        self.spentToday = spentToday
        self.limit = limit
        self.requested = requested
    }

    public var reason: String { "daily_limit_exceeded" }
    public var description: String {
        "user \(userId) spent \(spentToday) of a daily limit of \(limit) today; \(requested) more would pass it"
    }
}

/// An acknowledged spend.
public struct SpendResult: Sendable, Equatable {
    public let userId: Int
    /// The new row in `spends`.
    public let spendId: Int
    public let amount: Int
    /// The day's total as this transaction saw it, including this spend.
    public let spentToday: Int
    public let dailyLimit: Int
    /// Transactions run (more than 1 only for `serializable`).
    public let attempts: Int
}

public struct DailySpend {
    public let client: CommerceClient
    public let strategy: DailySpendStrategy

    public init(client: CommerceClient, strategy: DailySpendStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public static func lockKey(userId: Int) -> String { "spend:user:\(userId)" }

    /// The Redis key pattern of the case's locks (`DailySpendCase.lockKeyPatterns`).
    public static let lockKeyPattern = "spend:user:*"

    /// The advisory lock's class (first int4 key; "LPSD"); the user id is the second.
    static let advisoryLockClass = Int32(0x4C50_5344)

    /// The case's tables (`DailySpendCase.storage`: `Schema` creates, checks and empties them).
    public static let tables = ["spends", "spending_limits"]

    /// Creates the case's tables (after `users`, which they reference). There is deliberately no
    /// constraint that could enforce the limit: it spans rows, which is what the case is about.
    public static let schemaStatements = [
        """
        CREATE TABLE IF NOT EXISTS spending_limits (
            user_id BIGINT PRIMARY KEY REFERENCES users (id),
            daily_limit BIGINT NOT NULL CONSTRAINT spending_limits_limit_non_negative CHECK (daily_limit >= 0)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS spends (
            id BIGSERIAL PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id),
            day DATE NOT NULL,
            amount BIGINT NOT NULL CONSTRAINT spends_amount_positive CHECK (amount > 0),
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
        "CREATE INDEX IF NOT EXISTS spends_user_day ON spends (user_id, day)",
    ]

    /// Spends `amount` today (the database's `current_date`, fixed for the whole transaction), or
    /// refuses with `DailyLimitExceeded` when the day's total would pass the limit.
    public func spend(userId: Int, amount: Int) throws -> SpendResult {
        guard amount > 0 else { throw DomainError.invalidAmount(amount) }
        let probe = client.probe(.dailySpend)
        switch strategy {
        case .seed:
            return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                try client.transaction(probe: probe) { db in
                    // The row lock always, under the Redis lock too: with the breaker open (no Redis
                    // lock) it keeps the check alone, and a spend that still holds the Redis lock when
                    // the breaker opens must exclude those on the fallback, or both check the same
                    // total (DailySpendTests). Under the Redis lock it is uncontended.
                    try lockUser(userId, db, probe)
                    return try checkAndInsert(userId, amount, attempts: 1, db)
                }
            }
        case .pessimistic:
            return try client.transaction(probe: probe) { db in
                try lockUser(userId, db, probe)
                return try checkAndInsert(userId, amount, attempts: 1, db)
            }
        case .serializable:
            return try withOptimisticRetry(client.settings.retry, probe: probe) { attempt in
                try client.transaction(isolation: .serializable, probe: probe) { db in
                    try checkAndInsert(userId, amount, attempts: attempt, db)
                }
            }
        case .advisory:
            guard let key = Int32(exactly: userId) else { throw DomainError.notFound(entity: "user", id: userId) }
            return try client.transaction(probe: probe) { db in
                try db.query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)", [Int(Self.advisoryLockClass), Int(key)])
                return try checkAndInsert(userId, amount, attempts: 1, db)
            }
        case .repeatableReadNoLock:
            return try client.transaction(isolation: .repeatableRead, probe: probe) { db in
                try checkAndInsert(userId, amount, attempts: 1, db)
            }
        case .limitReachedRefused, .recordedTwice, .notSaved, .limitConsumed:
            return try client.transaction(probe: probe) { db in
                try lockUser(userId, db, probe)
                if strategy == .notSaved { try db.query("SAVEPOINT dry_run") }
                let spent = try checkAndInsert(
                    userId, amount, attempts: 1, db, refuseAtLimit: strategy == .limitReachedRefused, consumeLimit: strategy == .limitConsumed)
                if strategy == .notSaved { try db.query("ROLLBACK TO SAVEPOINT dry_run") }
                if strategy == .recordedTwice {
                    try db.query("INSERT INTO spends (user_id, day, amount) VALUES ($1, current_date, $2)", [userId, amount])
                }
                return spent
            }
        }
    }

    private func lockUser(_ userId: Int, _ db: PostgresConnection, _ probe: Probe) throws {
        let rows = try lockRowsForUpdate(db, table: .users, ids: [userId], probe: probe)
        guard rows[userId] != nil else { throw DomainError.notFound(entity: "user", id: userId) }
    }

    /// Reads the limit and the day's sum, checks, thinks (as every case does between its read and
    /// its write), inserts. Right only when the strategy keeps other spends of the user out.
    /// `refuseAtLimit` is the `limit-reached-refused` control's: a day may not reach its limit.
    /// `consumeLimit` is the `limit-consumed` control's: the limit read by deleting it, and a user
    /// without one let through.
    private func checkAndInsert(
        _ userId: Int, _ amount: Int, attempts: Int, _ db: PostgresConnection, refuseAtLimit: Bool = false,
        consumeLimit: Bool = false
    ) throws -> SpendResult {
        let limitRow = try db.query(
            consumeLimit
                ? """
                WITH consumed AS (DELETE FROM spending_limits WHERE user_id = $1 RETURNING daily_limit)
                SELECT (SELECT daily_limit FROM consumed) FROM users u WHERE u.id = $1
                """
                : "SELECT l.daily_limit FROM users u LEFT JOIN spending_limits l ON l.user_id = u.id WHERE u.id = $1", [userId])
        guard limitRow.rowCount == 1 else { throw DomainError.notFound(entity: "user", id: userId) }
        let limit = limitRow.int(0, 0)
        guard limit != nil || consumeLimit else { throw DomainError.notFound(entity: "spending limit", id: userId) }
        let spent = try db.query(
            "SELECT COALESCE(sum(amount), 0)::bigint FROM spends WHERE user_id = $1 AND day = current_date", [userId]
        ).int(0, 0) ?? 0
        if let limit, spent + amount > limit - (refuseAtLimit ? 1 : 0) {
            throw DailyLimitExceeded(userId: userId, spentToday: spent, limit: limit, requested: amount)
        }
        try client.think()
        let inserted = try db.query(
            "INSERT INTO spends (user_id, day, amount) VALUES ($1, current_date, $2) RETURNING id", [userId, amount])
        guard let spendId = inserted.int(0, 0) else { throw DomainError.notFound(entity: "user", id: userId) }
        return SpendResult(
            userId: userId, spendId: spendId, amount: amount, spentToday: spent + amount, dailyLimit: limit ?? 0, attempts: attempts)
    }
}

extension SeedData {
    /// Gives every user in `users` the same daily spending limit.
    public func spendingLimits(users: [Int], dailyLimit: Int) throws {
        try db.query(
            "INSERT INTO spending_limits (user_id, daily_limit) SELECT u, $2 FROM unnest($1::bigint[]) AS u",
            [postgresArray(users), dailyLimit])
    }
}
