import LockProofCommerce

/// Daily spending limit: for every user and day, the sum of the spends ≤ the user's daily limit
/// (the write skew G2 breaks it while no row is written twice); every acknowledged spend has its
/// row and no row appears that no client attempted (acknowledged ≤ rows ≤ acknowledged + unknown,
/// in count and amount, per user); and no spend was refused for the limit when the day's final
/// total left room for it (a day's total only grows, so a refusal with room at the end of the run
/// had room when it was made). Per user it keeps counts and sums, and the smallest refused amount.
final class DailyLimitChecker: Checker {
    let name = "daily-limit"
    let operations: Set<OperationName> = [.spend]
    private var acknowledged: [Int: (count: Int, amount: Int)] = [:]
    private var unknown: [Int: (count: Int, amount: Int)] = [:]
    private var smallestRefused: [Int: Int] = [:]
    private var attempted = 0
    var retainedRecords: Int { acknowledged.count + unknown.count + smallestRefused.count }

    func observe(_ entry: HistoryEntry) {
        guard let user = entry.arguments["user"], let amount = entry.arguments["amount"] else { return }
        attempted += 1
        switch entry.outcome {
        case .ok:
            acknowledged[user, default: (0, 0)].count += 1
            acknowledged[user, default: (0, 0)].amount += amount
        case .unknown:
            unknown[user, default: (0, 0)].count += 1
            unknown[user, default: (0, 0)].amount += amount
        case .fail:
            if entry.reason == "daily_limit_exceeded" { smallestRefused[user] = min(smallestRefused[user] ?? amount, amount) }
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        guard let limits = try context.state.spendingLimits(), let days = try context.state.spendDays() else {
            return .notChecked(name, because: "the target maps no spending_limits or spends query")
        }
        var rowsByUser: [Int: (count: Int, amount: Int)] = [:]
        var largestDay: [Int: Int] = [:]
        var worst: (user: Int, total: Int, limit: Int)?
        for spendDay in days {
            let user = spendDay.user, day = spendDay.day, total = spendDay.amount, count = spendDay.count
            rowsByUser[user, default: (0, 0)].count += count
            rowsByUser[user, default: (0, 0)].amount += total
            largestDay[user] = max(largestDay[user] ?? 0, total)
            guard let limit = limits[user] else {
                tally.add("spend-without-limit", count: count, "user \(user) has \(count) spends on \(day) and no daily limit")
                continue
            }
            if total > limit {
                tally.add(
                    "daily-limit-exceeded",
                    "user \(user) spent \(total) on \(day) in \(count) spends; the daily limit is \(limit)",
                    evidence: ViolationEvidence(subject: ["user": user], observed: total, expected: limit))
                if worst == nil || total - limit > worst!.total - worst!.limit { worst = (user, total, limit) }
            }
        }
        for user in Set(acknowledged.keys).union(unknown.keys).union(rowsByUser.keys).sorted() {
            let ok = acknowledged[user] ?? (0, 0), maybe = unknown[user] ?? (0, 0), rows = rowsByUser[user] ?? (0, 0)
            if rows.count < ok.count || rows.amount < ok.amount {
                tally.add(
                    "acknowledged-spend-missing",
                    "user \(user): \(ok.count) spends of \(ok.amount) acknowledged, \(rows.count) rows of \(rows.amount) in the database",
                    evidence: ViolationEvidence(subject: ["user": user], observed: rows.amount, expected: ok.amount))
            }
            if rows.count > ok.count + maybe.count || rows.amount > ok.amount + maybe.amount {
                tally.add(
                    "spend-never-acknowledged",
                    "user \(user): \(rows.count) rows of \(rows.amount), but only \(ok.count) spends of \(ok.amount) acknowledged and \(maybe.count) of \(maybe.amount) unknown")
            }
        }
        for (user, amount) in smallestRefused.sorted(by: { $0.key < $1.key }) {
            guard let limit = limits[user], (largestDay[user] ?? 0) + amount <= limit else { continue }
            tally.add(
                "refused-under-limit",
                "user \(user) was refused a spend of \(amount) for the limit, yet no day's total passed \(limit - amount) (limit \(limit))")
        }
        let spends = rowsByUser.values.reduce(0) { $0 + $1.count }
        let over = worst.map { ", worst: user \($0.user) spent \($0.total) of \($0.limit)" } ?? ""
        return tally.result(
            name, summary: "\(limits.count) users, \(spends) spends of \(attempted) attempted, \(days.count) user-days\(over)")
    }
}
