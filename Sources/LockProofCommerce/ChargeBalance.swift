import LockProofLocking
import LockProofPostgres

/// Case 1: charge a user's balance.
public enum ChargeBalanceStrategy: String, Sendable, CaseIterable, Codable {
    /// Redis lock `balance:user:{id}`, then a transaction with an optimistic version check; a
    /// conflict retries the whole thing (at most 10 attempts, exponential backoff).
    case seed
    /// The same optimistic transaction and retry, without the Redis lock.
    case optimisticRetry = "optimistic-retry"
    /// `SELECT … FOR UPDATE` on the user, then write.
    case pessimistic
    /// One `UPDATE … SET balance = balance + $1`: the database does the arithmetic.
    case atomic
    /// Read, add, write back with no lock and no version check. The negative control: loses updates.
    case naive
    /// The Redis lock alone around a plain read, add, write back: no database lock, no version
    /// check, no fencing. The weak control for faults: a lease that expires under a paused holder,
    /// or a failover that forgets the lock, lets two writers in and loses updates.
    case redisLock = "redis-lock"
    /// The Redis lock plus fencing: the transaction's first statement records the lock's fencing
    /// token on the user row and is refused when the row already carries that token or a newer one
    /// (a holding claims its token once; an equal one was reissued after a failover), so a holder
    /// whose lease ran out can no longer write (Kleppmann). The token is claimed before the read,
    /// not just checked at the write: otherwise a newer holder could read before an older one
    /// writes and still lose an update. Without a token (breaker open) it takes the row lock.
    case redisLockFenced = "redis-lock-fenced"
    /// The optimistic transaction and retry with the idempotency key claimed in a statement of its
    /// own before the transaction. The negative control for idempotency: a retry after a version
    /// conflict finds its own key and answers "already applied" without applying the charge.
    case keyOutsideTransaction = "key-outside-transaction"
    /// The negative control of the money checker's upper bound: money created while the ledger
    /// agrees. Under the row lock, a "make sure it landed" step applies the increment a second
    /// time, and the ledger row records what the balance moved by: one charge row, one
    /// acknowledgement, a balance above everything acknowledged.
    case reappliedCharge = "reapplied-charge"
    /// The negative control of the money checker's lower bound: money lost while the ledger
    /// agrees. Under the row lock, the credit goes through a fee that truncates (amount × 99 / 100)
    /// and the ledger row records what was credited: a balance below what was acknowledged.
    case feeSkimmed = "fee-skimmed"
    /// The negative control of the money checker's ledger comparison alone: under the row lock the
    /// balance moves by the amount, but the ledger row records the new balance instead of the
    /// amount (two arguments mixed up). Balances lie within the bounds; the ledger sums to more.
    case ledgerRecordsBalance = "ledger-records-balance"
    /// The negative control of the money checker's "every acknowledged charge is in the ledger"
    /// count alone: under the row lock the balance moves by the amount, but a "compact the ledger"
    /// step adds the amount to the user's last charge row instead of writing a row of its own.
    /// Balances lie within the bounds and the ledger sums to them; a user charged n times has one
    /// charge row.
    case ledgerRowsMerged = "ledger-rows-merged"
    /// The negative control of the money checker's "no charge applied twice" count alone: under
    /// the row lock the balance moves by the amount, and the ledger gets the charge in two rows
    /// (an amount split in halves). Balances lie within the bounds and the ledger sums to them;
    /// every charge has two charge rows.
    case ledgerRowSplit = "ledger-row-split"
    /// The negative control of the lock-exclusivity checker alone (issue 21): the seed's locked
    /// optimistic charge, but each charge first deletes the user's lock key "in case a crashed
    /// client left it stuck", whoever holds it: the holder's lock is broken and the breaker takes
    /// it, two holders at once. The version check keeps the money right; only lock-exclusivity
    /// sees it.
    case staleLockBroken = "stale-lock-broken"
    /// The negative control of the money checker's per-key "every acknowledged key is in the
    /// ledger" alone: under the row lock the key is claimed and the charge applied once, but the
    /// ledger row's reference is the reason (`charge`) instead of the key. Balances, ledger sums
    /// and each user's charge rows are right; no acknowledged key has its row.
    case keyReferenceDropped = "key-reference-dropped"
    /// The negative control of the money checker's per-key "a key is applied once" alone: under
    /// the row lock the charge is applied and its ledger row carries the key, but the key is never
    /// claimed, so every duplicate of a key applies it again and is acknowledged as applied.
    /// Balances lie within what was acknowledged, the ledger agrees, each user has one charge row
    /// per acknowledged charge; a key has as many rows as it was sent.
    case keyNotClaimed = "key-not-claimed"
}

/// The database refused a write whose fencing token is older than the newest it accepted for the
/// row: the writer's lock had been lost. Nothing was written.
public struct FencedWriteRefused: Error, CustomStringConvertible, Sendable {
    public let table: String
    public let id: Int
    public let token: Int64
    public var description: String { "\(table) \(id) refused fencing token \(token): a newer holder wrote first" }
}

public struct ChargeResult: Sendable, Equatable {
    public let userId: Int
    public let balance: Int
    public let attempts: Int
    /// False when the idempotency key had already been used: the charge was not applied again.
    public let applied: Bool
}

public struct ChargeBalance {
    public let client: CommerceClient
    public let strategy: ChargeBalanceStrategy

    public init(client: CommerceClient, strategy: ChargeBalanceStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public static func lockKey(userId: Int) -> String { "balance:user:\(userId)" }

    /// Adds `amount` to the balance. With an idempotency key, a repeated charge applies once.
    public func charge(userId: Int, amount: Int, idempotencyKey: String? = nil) throws -> ChargeResult {
        guard amount > 0 else { throw DomainError.invalidAmount(amount) }
        let probe = client.probe(.chargeBalance)
        switch strategy {
        case .seed:
            return try withOptimisticRetry(client.settings.retry, probe: probe) { attempt in
                try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                    try optimisticCharge(userId, amount, idempotencyKey, attempt, probe)
                }
            }
        case .optimisticRetry:
            return try withOptimisticRetry(client.settings.retry, probe: probe) { attempt in
                try optimisticCharge(userId, amount, idempotencyKey, attempt, probe)
            }
        case .staleLockBroken:
            return try withOptimisticRetry(client.settings.retry, probe: probe) { attempt in
                try client.deleteLockKey(Self.lockKey(userId: userId))
                return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                    try optimisticCharge(userId, amount, idempotencyKey, attempt, probe)
                }
            }
        case .pessimistic:
            return try client.transaction(probe: probe) { db in
                let rows = try lockRowsForUpdate(db, table: .users, ids: [userId], columns: "balance", probe: probe)
                guard let row = rows[userId], let balance = row.int(0, 0) else {
                    throw DomainError.notFound(entity: "user", id: userId)
                }
                if let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) { return previous }
                try client.think()
                try db.query("UPDATE users SET balance = $1, version = version + 1 WHERE id = $2", [balance + amount, userId])
                return try record(userId, amount, balance + amount, idempotencyKey, attempts: 1, db: db)
            }
        case .atomic:
            return try client.transaction(probe: probe) { db in
                if let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) { return previous }
                let result = try db.query(
                    "UPDATE users SET balance = balance + $1, version = version + 1 WHERE id = $2 RETURNING balance",
                    [amount, userId])
                guard let balance = result.int(0, 0) else { throw DomainError.notFound(entity: "user", id: userId) }
                return try record(userId, amount, balance, idempotencyKey, attempts: 1, db: db)
            }
        case .redisLock:
            return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                try unguardedCharge(userId, amount, idempotencyKey)
            }
        case .redisLockFenced:
            return try client.withDistributedLockHandle(Self.lockKey(userId: userId), probe: probe) { handle in
                try client.transaction(probe: probe) { db in
                    if let handle {
                        // Strictly newer: a holding claims its token once, so a token equal to
                        // the last accepted one was reissued (a counter that went backwards in a
                        // failover) and belongs to another holder.
                        let claimed = try db.query(
                            "UPDATE users SET fence_token = $2 WHERE id = $1 AND fence_token < $2",
                            [userId, handle.fencingToken])
                        guard claimed.affectedRows == 1 else {
                            _ = try readBalance(userId, db: db)  // a missing user is not a fencing refusal
                            probe.record(.fencedWriteRefused)
                            throw FencedWriteRefused(table: "users", id: userId, token: handle.fencingToken)
                        }
                    } else {
                        try lockRowsForUpdate(db, table: .users, ids: [userId], probe: probe)
                    }
                    let balance = try readBalance(userId, db: db).balance
                    if let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) { return previous }
                    try client.think()
                    try db.query("UPDATE users SET balance = $1, version = version + 1 WHERE id = $2", [balance + amount, userId])
                    return try record(userId, amount, balance + amount, idempotencyKey, attempts: 1, db: db)
                }
            }
        case .naive:
            return try unguardedCharge(userId, amount, idempotencyKey)
        case .reappliedCharge, .feeSkimmed, .ledgerRecordsBalance, .keyReferenceDropped, .keyNotClaimed:
            return try client.transaction(probe: probe) { db in
                let rows = try lockRowsForUpdate(db, table: .users, ids: [userId], columns: "balance", probe: probe)
                guard let before = rows[userId]?.int(0, 0) else { throw DomainError.notFound(entity: "user", id: userId) }
                if strategy != .keyNotClaimed, let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) {
                    return previous
                }
                try client.think()
                let increments = strategy == .reappliedCharge ? [amount, amount] : strategy == .feeSkimmed ? [amount * 99 / 100] : [amount]
                var balance = before
                for increment in increments {
                    balance = try db.query(
                        "UPDATE users SET balance = balance + $1, version = version + 1 WHERE id = $2 RETURNING balance",
                        [increment, userId]
                    ).int(0, 0) ?? balance
                }
                try db.query(
                    "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'charge', $3)",
                    [
                        userId, strategy == .ledgerRecordsBalance ? balance : balance - before,
                        strategy == .keyReferenceDropped ? "charge" : idempotencyKey ?? "charge",
                    ])
                return ChargeResult(userId: userId, balance: balance, attempts: 1, applied: true)
            }
        case .ledgerRowsMerged, .ledgerRowSplit:
            return try client.transaction(probe: probe) { db in
                let rows = try lockRowsForUpdate(db, table: .users, ids: [userId], columns: "balance", probe: probe)
                guard rows[userId] != nil else { throw DomainError.notFound(entity: "user", id: userId) }
                if let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) { return previous }
                try client.think()
                let balance = try db.query(
                    "UPDATE users SET balance = balance + $1, version = version + 1 WHERE id = $2 RETURNING balance", [amount, userId]
                ).int(0, 0) ?? 0
                let merged = strategy == .ledgerRowsMerged ? try db.query(
                    """
                    UPDATE balance_ledger SET delta = delta + $1
                    WHERE id = (SELECT max(id) FROM balance_ledger WHERE user_id = $2 AND reason = 'charge')
                    """, [amount, userId]
                ).affectedRows : 0
                let parts = strategy == .ledgerRowSplit ? [amount / 2, amount - amount / 2] : merged > 0 ? [] : [amount]
                for part in parts {
                    try db.query(
                        "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'charge', $3)",
                        [userId, part, idempotencyKey ?? "charge"])
                }
                return ChargeResult(userId: userId, balance: balance, attempts: 1, applied: true)
            }
        case .keyOutsideTransaction:
            return try withOptimisticRetry(client.settings.retry, probe: probe) { attempt in
                let claimed = try client.withDatabase { db in
                    _ = try readBalance(userId, db: db)  // an unknown user claims no key
                    return try claimIdempotencyKey(idempotencyKey, userId: userId, db: db)
                }
                if let previous = claimed { return previous }
                return try optimisticCharge(userId, amount, idempotencyKey, attempt, probe, claimingKey: false)
            }
        }
    }

    /// Read, add, write back: right only if something outside the database excludes other writers.
    private func unguardedCharge(_ userId: Int, _ amount: Int, _ idempotencyKey: String?) throws -> ChargeResult {
        let probe = client.probe(.chargeBalance)
        return try client.transaction(probe: probe) { db in
            let balance = try readBalance(userId, db: db).balance
            if let previous = try claimIdempotencyKey(idempotencyKey, userId: userId, db: db) { return previous }
            try client.think()
            try db.query("UPDATE users SET balance = $1 WHERE id = $2", [balance + amount, userId])
            return try record(userId, amount, balance + amount, idempotencyKey, attempts: 1, db: db)
        }
    }

    private func optimisticCharge(
        _ userId: Int, _ amount: Int, _ key: String?, _ attempt: Int, _ probe: Probe, claimingKey: Bool = true
    ) throws -> ChargeResult {
        try client.transaction(probe: probe) { db in
            let (balance, version) = try readBalance(userId, db: db)
            if claimingKey, let previous = try claimIdempotencyKey(key, userId: userId, db: db) { return previous }
            try client.think()
            let updated = try db.query(
                "UPDATE users SET balance = $1, version = version + 1 WHERE id = $2 AND version = $3",
                [balance + amount, userId, version])
            guard updated.affectedRows == 1 else { throw OptimisticConflict(entity: "user", id: userId) }
            return try record(userId, amount, balance + amount, key, attempts: attempt, db: db)
        }
    }

    private func readBalance(_ userId: Int, db: PostgresConnection) throws -> (balance: Int, version: Int) {
        let row = try db.query("SELECT balance, version FROM users WHERE id = $1", [userId])
        guard let balance = row.int(0, 0), let version = row.int(0, 1) else {
            throw DomainError.notFound(entity: "user", id: userId)
        }
        return (balance, version)
    }

    /// Claims the key inside the charge's own transaction: a concurrent holder of the same key
    /// blocks on the unique index until this one commits, then sees it taken.
    private func claimIdempotencyKey(_ key: String?, userId: Int, db: PostgresConnection) throws -> ChargeResult? {
        guard let key else { return nil }
        let claimed = try db.query(
            "INSERT INTO idempotency_keys (key, operation, reference) VALUES ($1, 'charge', $2) ON CONFLICT (key) DO NOTHING",
            [key, "user:\(userId)"])
        if claimed.affectedRows == 1 { return nil }
        let balance = try db.query("SELECT balance FROM users WHERE id = $1", [userId]).int(0, 0) ?? 0
        return ChargeResult(userId: userId, balance: balance, attempts: 1, applied: false)
    }

    private func record(
        _ userId: Int, _ amount: Int, _ balance: Int, _ key: String?, attempts: Int, db: PostgresConnection
    ) throws -> ChargeResult {
        try db.query(
            "INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'charge', $3)",
            [userId, amount, key ?? "charge"])
        return ChargeResult(userId: userId, balance: balance, attempts: attempts, applied: true)
    }
}
