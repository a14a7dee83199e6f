import LockProofCommerce

/// No lost cart increment: every cart line's quantity lies between its opening quantity plus the
/// sum of its acknowledged adds and that plus its unknown adds. Per cart line it keeps the two sums.
final class CartChecker: Checker {
    let name = "cart-increments"
    let operations: Set<OperationName> = [.add]

    private struct Line: Hashable {
        let user: Int
        let product: Int
    }
    private var acknowledgedAdds: [Line: Int] = [:]
    private var possibleAdds: [Line: Int] = [:]
    private var acknowledged = 0
    var retainedRecords: Int { acknowledgedAdds.count + possibleAdds.count }

    func observe(_ entry: HistoryEntry) {
        guard entry.outcome != .fail else { return }
        let line = Line(user: entry.arguments["user"]!, product: entry.arguments["product"]!)
        let quantity = entry.arguments["quantity"]!
        possibleAdds[line, default: 0] += quantity
        if entry.outcome == .ok {
            acknowledgedAdds[line, default: 0] += quantity
            acknowledged += 1
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        var final: [Line: Int] = [:]
        for line in try context.state.cartLines() ?? [] { final[Line(user: line.user, product: line.product)] = line.quantity }
        // Seeded lines open at `cartQuantity`; the others are made by their first add.
        let opening = context.initial.cartQuantity
        var seeded = Set<Line>()
        if opening > 0 {
            for user in context.initial.users {
                for product in context.initial.products { seeded.insert(Line(user: user, product: product)) }
            }
        }
        for line in Set(final.keys).union(acknowledgedAdds.keys).union(seeded).sorted(by: { ($0.user, $0.product) < ($1.user, $1.product) }) {
            let value = final[line] ?? 0
            let start = seeded.contains(line) ? opening : 0
            let lower = start + (acknowledgedAdds[line] ?? 0)
            let upper = start + (possibleAdds[line] ?? 0)
            if value < lower {
                tally.add(
                    "lost-increment",
                    "user \(line.user) product \(line.product): quantity \(value), \(start > 0 ? "the opening \(start) and " : "")acknowledged adds sum to \(lower)",
                    evidence: ViolationEvidence(subject: ["user": line.user, "product": line.product], observed: value, expected: lower))
            } else if value > upper {
                tally.add("phantom-increment", "user \(line.user) product \(line.product): quantity \(value), at most \(upper) was added")
            }
        }
        return tally.result(name, summary: "\(final.count) cart lines, \(acknowledged) acknowledged adds")
    }
}
