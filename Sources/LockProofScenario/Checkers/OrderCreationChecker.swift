import LockProofCommerce

/// Orders: every acknowledged creation has its order and items; no order exists that no creation
/// could have made; no order asks for more of a product than its stock at check time.
struct OrderCreationChecker: Checker {
    let name = "order-creation"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let existing = try context.db.pairs("SELECT id, user_id FROM orders")
        let itemCounts = try context.db.pairs("SELECT order_id, count(*) FROM order_items GROUP BY order_id")
        let acknowledged = context.history.with("create", .ok)
        let unknown = context.history.with("create", .unknown).count
        for entry in acknowledged {
            let order = entry.result!["order"]!
            if existing[order] == nil {
                tally.add("acknowledged-order-missing", "order \(order) for user \(entry.arguments["user"]!) was acknowledged; no row")
            } else if itemCounts[order] != entry.items?.count {
                tally.add("order-items-missing", "order \(order): \(entry.items?.count ?? 0) lines requested, \(itemCounts[order] ?? 0) stored")
            }
        }
        let made = existing.count - context.initial.orders.count
        if made > acknowledged.count + unknown {
            tally.add("phantom-order", "\(made) orders exist, \(acknowledged.count) acknowledged and \(unknown) unknown")
        }
        // Stock is not deducted at creation; with payments in the run it only goes down, so the
        // initial stock bounds what any check could have seen.
        let rows = try context.db.query(
            "SELECT order_id, product_id, sum(quantity)::bigint FROM order_items GROUP BY order_id, product_id ORDER BY order_id")
        for row in 0..<rows.rowCount {
            let product = rows.int(row, 1)!, quantity = rows.int(row, 2)!
            if quantity > context.initial.stock[product] ?? 0 {
                tally.add(
                    "created-beyond-stock",
                    "order \(rows.int(row, 0)!) asks for \(quantity) of product \(product), stock was \(context.initial.stock[product] ?? 0)")
            }
        }
        return tally.result(name, summary: "\(acknowledged.count) orders acknowledged, \(made) created")
    }
}
