import LockProofCommerce

/// Orders: every acknowledged creation has its order and items; no order exists that no creation
/// could have made; no order asks for more of a product than its stock at check time. Per created
/// order it keeps its user and number of lines (an order is a row in the database as well).
final class OrderCreationChecker: Checker {
    let name = "order-creation"
    let operations: Set<OperationName> = [.create]

    private struct Created {
        let user: Int
        let lines: Int
    }
    private var created: [Int: Created] = [:]
    private var acknowledged = 0
    private var unknown = 0
    var retainedRecords: Int { created.count }

    func observe(_ entry: HistoryEntry) {
        switch entry.outcome {
        case .ok:
            acknowledged += 1
            created[entry.result!["order"]!] = Created(user: entry.arguments["user"]!, lines: entry.items?.count ?? 0)
        case .unknown: unknown += 1
        case .fail: break
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let existing = (try context.state.orders() ?? [:]).mapValues(\.user)
        let orderItems = try context.state.orderItems() ?? []
        var itemCounts: [Int: Int] = [:]
        // Per order and product, the quantity asked for.
        var asked: [Int: [Int: Int]] = [:]
        for item in orderItems {
            itemCounts[item.order, default: 0] += 1
            asked[item.order, default: [:]][item.product, default: 0] += item.quantity
        }
        for (order, made) in created.sorted(by: { $0.key < $1.key }) {
            if existing[order] == nil {
                tally.add("acknowledged-order-missing", "order \(order) for user \(made.user) was acknowledged; no row")
            } else if itemCounts[order] != made.lines {
                tally.add("order-items-missing", "order \(order): \(made.lines) lines requested, \(itemCounts[order] ?? 0) stored")
            }
        }
        let made = existing.count - context.initial.orders.count
        if made > acknowledged + unknown {
            tally.add("phantom-order", "\(made) orders exist, \(acknowledged) acknowledged and \(unknown) unknown")
        }
        // Stock is not deducted at creation; with payments in the run it only goes down, so the
        // initial stock bounds what any check could have seen.
        for (order, products) in asked.sorted(by: { $0.key < $1.key }) {
            for (product, quantity) in products.sorted(by: { $0.key < $1.key }) where quantity > context.initial.stock[product] ?? 0 {
                tally.add(
                    "created-beyond-stock",
                    "order \(order) asks for \(quantity) of product \(product), stock was \(context.initial.stock[product] ?? 0)")
            }
        }
        return tally.result(name, summary: "\(acknowledged) orders acknowledged, \(made) created")
    }
}
