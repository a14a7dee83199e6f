import LockProofCommerce

/// Of racing transitions exactly one wins: per order at most one acknowledged transition, the
/// stored state is the winner's, and an order nobody won (and no unknown touched) is unchanged —
/// or PAID when a payment of it in the same mix was acknowledged.
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
        // Payments racing the transitions (complete + cancel + pay): an acknowledged one leaves the
        // order PAID (or COMPLETED, if a complete won after it); an unknown or declined one may
        // have left it anywhere on the payment path.
        var paid = Set<Int>()
        for entry in context.history where entry.operation == "pay" && (entry.outcome != .fail || entry.reason == "payment_declined") {
            if entry.outcome == .ok { paid.insert(entry.arguments["order"]!) } else { unknown.insert(entry.arguments["order"]!) }
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
            } else if won.isEmpty && !unknown.contains(order) && status[order] != (paid.contains(order) ? "PAID" : "PENDING") {
                tally.add(
                    "changed-without-winner",
                    "order \(order): no transition acknowledged\(paid.contains(order) ? " (a payment was)" : ""), stored \(status[order] ?? "?")")
            }
        }
        let raced = context.history.filter { $0.operation == "complete" || $0.operation == "cancel" }.count
        return tally.result(name, summary: "\(context.initial.orders.count) orders, \(raced) transitions attempted")
    }
}
