import LockProofCommerce

/// Of racing transitions exactly one wins: per order at most one acknowledged transition, the
/// stored state is the winner's, and an order nobody won (and no unknown touched) is unchanged —
/// or PAID when a payment of it in the same mix was acknowledged. Per order it keeps the number
/// of winners and the first few of them.
final class TransitionChecker: Checker {
    let name = "single-winner"
    let operations: Set<OperationName> = [.complete, .cancel, .pay]

    private struct Winners {
        var count = 0
        /// `client 3 complete`, at most `kept` of them.
        var first: [String] = []
        var firstOperation = ""
    }
    private static let kept = 4
    private var winners: [Int: Winners] = [:]
    private var unknown = Set<Int>()
    private var paid = Set<Int>()
    private var attempted = 0
    var retainedRecords: Int { winners.values.reduce(0) { $0 + 1 + $1.first.count } + unknown.count + paid.count }

    func observe(_ entry: HistoryEntry) {
        let order = entry.arguments["order"]!
        if entry.operation == .pay {
            // Payments racing the transitions (complete + cancel + pay): an acknowledged one leaves
            // the order PAID (or COMPLETED, if a complete won after it); an unknown or declined one
            // may have left it anywhere on the payment path.
            if entry.outcome == .ok {
                paid.insert(order)
            } else if entry.outcome == .unknown || entry.reason == "payment_declined" {
                unknown.insert(order)
            }
            return
        }
        attempted += 1
        switch entry.outcome {
        case .ok:
            var won = winners[order] ?? Winners()
            if won.count == 0 { won.firstOperation = entry.operation.rawValue }
            won.count += 1
            if won.first.count < Self.kept { won.first.append("client \(entry.client) \(entry.operation.rawValue)") }
            winners[order] = won
        case .unknown: unknown.insert(order)
        case .fail: break
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let status = (try context.state.orders() ?? [:]).mapValues(\.status)
        let target = ["complete": "COMPLETED", "cancel": "CANCELLED"]
        for order in context.initial.orders {
            let won = winners[order] ?? Winners()
            if won.count > 1 {
                let more = won.count > won.first.count ? ", …" : ""
                tally.add(
                    "several-winners",
                    "order \(order): \(won.count) transitions acknowledged (\(won.first.joined(separator: ", "))\(more)), stored \(status[order] ?? "?")",
                    evidence: ViolationEvidence(subject: ["order": order], observed: won.count, expected: 1))
            } else if won.count == 1, status[order] != target[won.firstOperation] {
                tally.add("winner-not-stored", "order \(order): \(won.firstOperation) acknowledged, stored \(status[order] ?? "?")")
            } else if won.count == 0 && !unknown.contains(order) && status[order] != (paid.contains(order) ? "PAID" : "PENDING") {
                tally.add(
                    "changed-without-winner",
                    "order \(order): no transition acknowledged\(paid.contains(order) ? " (a payment was)" : ""), stored \(status[order] ?? "?")")
            }
        }
        return tally.result(name, summary: "\(context.initial.orders.count) orders, \(attempted) transitions attempted")
    }
}
