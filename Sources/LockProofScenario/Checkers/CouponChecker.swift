import LockProofCommerce

/// Coupons: rows = issued_quantity ≤ total; no user holds a coupon twice; the acknowledged issues
/// lie between the bounds the rows allow (ok ≤ rows ≤ ok + unknown); every acknowledged issue has
/// its row. Per user it keeps the number of acknowledged issues.
final class CouponChecker: Checker {
    let name = "coupon-quantity"
    let operations: Set<OperationName> = [.issue]
    private var acknowledgedByUser: [Int: Int] = [:]
    private var acknowledged = 0
    private var unknown = 0
    var retainedRecords: Int { acknowledgedByUser.count }

    func observe(_ entry: HistoryEntry) {
        switch entry.outcome {
        case .ok:
            acknowledged += 1
            acknowledgedByUser[entry.arguments["user"]!, default: 0] += 1
        case .unknown: unknown += 1
        case .fail: break
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        guard let couponId = context.initial.couponId else { return tally.result(name, summary: "no coupon") }
        let (total, issued) = try context.state.coupon(couponId) ?? (0, 0)
        let holders = try context.state.couponHolders(couponId) ?? [:]
        let rows = holders.values.reduce(0, +)
        if rows != issued {
            tally.add("rows-differ-from-issued-quantity", "coupon \(couponId): \(rows) rows but issued_quantity \(issued)")
        }
        if rows > total || issued > total {
            tally.add(
                "over-issued", "coupon \(couponId): total \(total), \(rows) rows, issued_quantity \(issued)",
                evidence: ViolationEvidence(subject: ["coupon": couponId], observed: max(rows, issued), expected: total))
        }
        for (user, count) in holders.sorted(by: { $0.key < $1.key }) where count > 1 {
            tally.add(
                "duplicate-user-coupon", "user \(user) holds coupon \(couponId) \(count) times",
                evidence: ViolationEvidence(subject: ["user": user, "coupon": couponId], observed: count, expected: 1))
        }
        if rows < acknowledged || rows > acknowledged + unknown {
            tally.add(
                "rows-outside-acknowledged-bounds",
                "coupon \(couponId): \(rows) rows, \(acknowledged) issues acknowledged and \(unknown) unknown")
        }
        for (user, count) in acknowledgedByUser.sorted(by: { $0.key < $1.key }) where holders[user] == nil {
            tally.add("acknowledged-issue-without-row", count: count, "user \(user) was told they got coupon \(couponId); no row")
        }
        return tally.result(name, summary: "total \(total), \(rows) issued, \(acknowledged) acknowledged")
    }
}
