import LockProofCommerce

/// Of racing transitions exactly one wins: per order at most one acknowledged transition, the
/// stored state is the winner's, and an order nobody won (and no unknown touched) is unchanged.
struct TransitionChecker: Checker {
    let name = "single-winner"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let rows = try context.db.query("SELECT id, status FROM orders")
        var status: [Int: String] = [:]
        for row in 0..<rows.rowCount { status[rows.int(row, 0)!] = rows.string(row, 1) }
        var winners: [Int: [HistoryEntry]] = [:]
        var unknown = Set<Int>()
        for entry in context.history where entry.operation == "complete" || entry.operation == "cancel" {
            let order = entry.arguments["order"]!
            if entry.outcome == .ok { winners[order, default: []].append(entry) }
            if entry.outcome == .unknown { unknown.insert(order) }
        }
        let target = ["complete": "COMPLETED", "cancel": "CANCELLED"]
        for order in context.initial.orders {
            let won = winners[order] ?? []
            if won.count > 1 {
                tally.add(
                    "several-winners",
                    "order \(order): \(won.count) transitions acknowledged (\(won.map { "client \($0.client) \($0.operation)" }.joined(separator: ", "))), stored \(status[order] ?? "?")")
            } else if let winner = won.first, status[order] != target[winner.operation] {
                tally.add("winner-not-stored", "order \(order): \(winner.operation) acknowledged, stored \(status[order] ?? "?")")
            } else if won.isEmpty && !unknown.contains(order) && status[order] != "PENDING" {
                tally.add("changed-without-winner", "order \(order): no transition acknowledged, stored \(status[order] ?? "?")")
            }
        }
        let raced = context.history.filter { $0.operation == "complete" || $0.operation == "cancel" }.count
        return tally.result(name, summary: "\(context.initial.orders.count) orders, \(raced) transitions attempted")
    }
}
