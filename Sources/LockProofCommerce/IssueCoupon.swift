import LockProofLocking
import LockProofPostgres

/// Case 3: issue a first-come-first-served coupon, at most one per user, never more than the total.
public enum IssueCouponStrategy: String, Sendable, CaseIterable, Codable {
    /// Redis lock `coupon:issue:{id}`, an "already issued?" check, `FOR UPDATE` on the coupon, and
    /// the unique constraint (user_id, coupon_id) as the last line.
    case seed
    /// `FOR UPDATE` on the coupon and the unique constraint only.
    case pessimistic
    /// `UPDATE … SET issued_quantity = issued_quantity + 1 WHERE issued_quantity < total_quantity`
    /// and the unique constraint.
    case atomic
    /// Read, check, insert, write the count back, with no lock. The negative control: over-issues.
    case naive
    /// The negative control of the coupon checker's total: `FOR UPDATE` on the coupon, but the
    /// sold-out check is off by one (`issued <= total`). Rows and issued_quantity agree, one per
    /// acknowledged issue, and the coupon ends one above its total.
    case offByOne = "off-by-one"
    /// The negative control of the coupon checker's counter comparison alone: `FOR UPDATE` on the
    /// coupon and a right sold-out check, but issued_quantity is bumped twice per issue (by the
    /// issue and again by a "keep the count in sync" step). One row per acknowledged issue, never
    /// above the total; the counter runs ahead of the rows.
    case countedTwice = "counted-twice"
    /// The negative control of the coupon checker's "every acknowledged issue has its row" alone:
    /// `FOR UPDATE` on the coupon and a right sold-out check, but the row goes to whoever a
    /// waiting-list query names (the highest user id without the coupon), not to the requester.
    /// One row and one count per acknowledged issue, never above the total; the requesters who
    /// were told they got it hold nothing.
    case nextInLine = "next-in-line"
    /// The negative control of the coupon checker's acknowledged bounds alone: the pessimistic
    /// issue, then a "bring a friend" step gives one more to the waiting list's next user (the
    /// highest user id without the coupon), counted as well. Rows and issued_quantity agree, never
    /// above the total, every requester holds one; twice as many rows as acknowledged issues.
    case plusOneFriend = "plus-one-friend"
}

public struct CouponIssue: Sendable, Equatable {
    public let couponId: Int
    public let userId: Int
    public let issuedQuantity: Int
}

public struct IssueCoupon {
    public let client: CommerceClient
    public let strategy: IssueCouponStrategy

    public init(client: CommerceClient, strategy: IssueCouponStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public static func lockKey(couponId: Int) -> String { "coupon:issue:\(couponId)" }

    public func issue(couponId: Int, userId: Int) throws -> CouponIssue {
        let probe = client.probe(.issueCoupon)
        do {
            switch strategy {
            case .seed:
                return try client.withDistributedLock(Self.lockKey(couponId: couponId), probe: probe) {
                    try client.transaction(probe: probe) { db in
                        if try alreadyIssued(couponId, userId, db) {
                            throw DomainError.alreadyIssued(userId: userId, couponId: couponId, detectedBy: .applicationCheck)
                        }
                        return try issueLocked(couponId, userId, db, probe)
                    }
                }
            case .pessimistic:
                return try client.transaction(probe: probe) { db in try issueLocked(couponId, userId, db, probe) }
            case .offByOne:
                return try client.transaction(probe: probe) { db in try issueLocked(couponId, userId, db, probe, lastIssue: 1) }
            case .countedTwice:
                return try client.transaction(probe: probe) { db in try issueLocked(couponId, userId, db, probe, counted: 2) }
            case .nextInLine:
                return try client.transaction(probe: probe) { db in try issueLocked(couponId, userId, db, probe, toNextInLine: true) }
            case .plusOneFriend:
                return try client.transaction(probe: probe) { db in
                    let issued = try issueLocked(couponId, userId, db, probe)
                    let friend = try db.query(
                        """
                        SELECT u.id FROM users u
                        WHERE NOT EXISTS (SELECT 1 FROM user_coupons c WHERE c.user_id = u.id AND c.coupon_id = $1)
                        ORDER BY u.id DESC LIMIT 1
                        """, [couponId]
                    ).int(0, 0)
                    guard let friend else { return issued }
                    try insertUserCoupon(couponId, friend, db)
                    try db.query(
                        "UPDATE coupons SET issued_quantity = issued_quantity + 1, version = version + 1 WHERE id = $1", [couponId])
                    return issued
                }
            case .atomic:
                return try client.transaction(probe: probe) { db in
                    try requireUser(userId, db)
                    let updated = try db.query(
                        """
                        UPDATE coupons SET issued_quantity = issued_quantity + 1, version = version + 1
                        WHERE id = $1 AND issued_quantity < total_quantity RETURNING issued_quantity
                        """, [couponId])
                    guard let issued = updated.int(0, 0) else {
                        let exists = try db.query("SELECT 1 FROM coupons WHERE id = $1", [couponId]).rowCount == 1
                        throw exists
                            ? DomainError.soldOut(couponId: couponId) : DomainError.notFound(entity: "coupon", id: couponId)
                    }
                    try insertUserCoupon(couponId, userId, db)
                    return CouponIssue(couponId: couponId, userId: userId, issuedQuantity: issued)
                }
            case .naive:
                return try client.transaction(probe: probe) { db in
                    try requireUser(userId, db)
                    let coupon = try db.query("SELECT total_quantity, issued_quantity FROM coupons WHERE id = $1", [couponId])
                    guard let total = coupon.int(0, 0), let issued = coupon.int(0, 1) else {
                        throw DomainError.notFound(entity: "coupon", id: couponId)
                    }
                    guard issued < total else { throw DomainError.soldOut(couponId: couponId) }
                    try client.think()
                    try insertUserCoupon(couponId, userId, db)
                    try db.query("UPDATE coupons SET issued_quantity = $1 WHERE id = $2", [issued + 1, couponId])
                    return CouponIssue(couponId: couponId, userId: userId, issuedQuantity: issued + 1)
                }
            }
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            // The last line of defense caught a duplicate the layers above let through.
            throw DomainError.alreadyIssued(userId: userId, couponId: couponId, detectedBy: .uniqueConstraint)
        }
    }

    private func alreadyIssued(_ couponId: Int, _ userId: Int, _ db: PostgresConnection) throws -> Bool {
        try db.query("SELECT 1 FROM user_coupons WHERE user_id = $1 AND coupon_id = $2", [userId, couponId]).rowCount > 0
    }

    private func requireUser(_ userId: Int, _ db: PostgresConnection) throws {
        guard try db.query("SELECT 1 FROM users WHERE id = $1", [userId]).rowCount == 1 else {
            throw DomainError.notFound(entity: "user", id: userId)
        }
    }

    /// `lastIssue`, `counted` and `toNextInLine` are the coupon controls': how far past the total
    /// the sold-out check lets issues go (right: 0), how much an issue adds to issued_quantity
    /// (right: 1), and whether the row goes to the waiting list's next user (right: the requester).
    private func issueLocked(
        _ couponId: Int, _ userId: Int, _ db: PostgresConnection, _ probe: Probe, lastIssue: Int = 0, counted: Int = 1,
        toNextInLine: Bool = false
    ) throws -> CouponIssue {
        try requireUser(userId, db)
        let rows = try lockRowsForUpdate(
            db, table: .coupons, ids: [couponId], columns: "total_quantity, issued_quantity", probe: probe)
        guard let coupon = rows[couponId], let total = coupon.int(0, 0), let issued = coupon.int(0, 1) else {
            throw DomainError.notFound(entity: "coupon", id: couponId)
        }
        guard issued < total + lastIssue else { throw DomainError.soldOut(couponId: couponId) }
        try client.think()
        var holder = userId
        if toNextInLine {
            holder = try db.query(
                """
                SELECT u.id FROM users u
                WHERE NOT EXISTS (SELECT 1 FROM user_coupons c WHERE c.user_id = u.id AND c.coupon_id = $1)
                ORDER BY u.id DESC LIMIT 1
                """, [couponId]
            ).int(0, 0) ?? userId
        }
        try insertUserCoupon(couponId, holder, db)
        for _ in 0..<counted {
            try db.query(
                "UPDATE coupons SET issued_quantity = issued_quantity + 1, version = version + 1 WHERE id = $1", [couponId])
        }
        return CouponIssue(couponId: couponId, userId: userId, issuedQuantity: issued + counted)
    }

    private func insertUserCoupon(_ couponId: Int, _ userId: Int, _ db: PostgresConnection) throws {
        try db.query("INSERT INTO user_coupons (user_id, coupon_id) VALUES ($1, $2)", [userId, couponId])
    }
}
