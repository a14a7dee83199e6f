import LockProofCommerce

/// No lost cart increment: every cart line's quantity lies between its opening quantity plus the
/// sum of its acknowledged adds and that plus its unknown adds.
struct CartChecker: Checker {
    let name = "cart-increments"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let rows = try context.db.query("SELECT user_id, product_id, quantity FROM cart_items")
        var final: [[Int]: Int] = [:]
        for row in 0..<rows.rowCount { final[[rows.int(row, 0)!, rows.int(row, 1)!]] = rows.int(row, 2)! }
        // Seeded lines open at `cartQuantity`; the others are made by their first add.
        let opening = context.initial.cartQuantity
        var lower: [[Int]: Int] = [:]
        var upper: [[Int]: Int] = [:]
        if opening > 0 {
            for user in context.initial.users {
                for product in context.initial.products { lower[[user, product]] = opening; upper[[user, product]] = opening }
            }
        }
        for entry in context.history where entry.operation == "add" && entry.outcome != .fail {
            let line = [entry.arguments["user"]!, entry.arguments["product"]!]
            let quantity = entry.arguments["quantity"]!
            upper[line, default: 0] += quantity
            if entry.outcome == .ok { lower[line, default: 0] += quantity }
        }
        for line in Set(final.keys).union(lower.keys).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let value = final[line] ?? 0
            if value < lower[line] ?? 0 {
                tally.add("lost-increment", "user \(line[0]) product \(line[1]): quantity \(value), \(opening > 0 ? "the opening \(opening) and " : "")acknowledged adds sum to \(lower[line]!)")
            } else if value > upper[line] ?? 0 {
                tally.add("phantom-increment", "user \(line[0]) product \(line[1]): quantity \(value), at most \(upper[line] ?? 0) was added")
            }
        }
        let acknowledged = context.history.with("add", .ok).count
        return tally.result(name, summary: "\(final.count) cart lines, \(acknowledged) acknowledged adds")
    }
}
