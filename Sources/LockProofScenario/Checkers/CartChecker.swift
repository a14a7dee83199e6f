import LockProofCommerce

/// No lost cart increment: every cart line's quantity lies between the sum of its acknowledged
/// adds and that sum plus its unknown adds.
struct CartChecker: Checker {
    let name = "cart-increments"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let rows = try context.db.query("SELECT user_id, product_id, quantity FROM cart_items")
        var final: [[Int]: Int] = [:]
        for row in 0..<rows.rowCount { final[[rows.int(row, 0)!, rows.int(row, 1)!]] = rows.int(row, 2)! }
        var lower: [[Int]: Int] = [:]
        var upper: [[Int]: Int] = [:]
        for entry in context.history where entry.operation == "add" && entry.outcome != .fail {
            let line = [entry.arguments["user"]!, entry.arguments["product"]!]
            let quantity = entry.arguments["quantity"]!
            upper[line, default: 0] += quantity
            if entry.outcome == .ok { lower[line, default: 0] += quantity }
        }
        for line in Set(final.keys).union(lower.keys).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let value = final[line] ?? 0
            if value < lower[line] ?? 0 {
                tally.add("lost-increment", "user \(line[0]) product \(line[1]): quantity \(value), acknowledged adds sum to \(lower[line]!)")
            } else if value > upper[line] ?? 0 {
                tally.add("phantom-increment", "user \(line[0]) product \(line[1]): quantity \(value), at most \(upper[line] ?? 0) was added")
            }
        }
        let acknowledged = context.history.with("add", .ok).count
        return tally.result(name, summary: "\(final.count) cart lines, \(acknowledged) acknowledged adds")
    }
}
