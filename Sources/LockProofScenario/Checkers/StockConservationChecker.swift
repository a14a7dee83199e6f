import LockProofCommerce

/// Stock is conserved: for every product, final stock = initial − what acknowledged payments took
/// (widened by unknown payments), the stock ledger sums to the stock, nothing is negative; every
/// acknowledged payment left its order PAID, and no order is PAID without an acknowledged or
/// unknown payment.
struct StockConservationChecker: Checker {
    let name = "stock-conservation"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let stock = try context.db.pairs("SELECT id, stock FROM products")
        let ledger = try context.db.pairs("SELECT product_id, sum(delta)::bigint FROM stock_ledger GROUP BY product_id")
        let rows = try context.db.query("SELECT order_id, product_id, quantity FROM order_items")
        var items: [Int: [(product: Int, quantity: Int)]] = [:]
        for row in 0..<rows.rowCount { items[rows.int(row, 0)!, default: []].append((rows.int(row, 1)!, rows.int(row, 2)!)) }
        let statusRows = try context.db.query("SELECT id, status FROM orders")
        var status: [Int: String] = [:]
        for row in 0..<statusRows.rowCount { status[statusRows.int(row, 0)!] = statusRows.string(row, 1) }
        let pendingCompensations = Set(try context.db.pairs("SELECT order_id, id FROM compensations WHERE status = 'pending'").keys)

        var lower = context.initial.stock
        var upper = context.initial.stock
        var acknowledged = Set<Int>()
        var possible = Set<Int>()
        for entry in context.history where entry.operation == "pay" {
            let order = entry.arguments["order"]!
            switch entry.outcome {
            case .ok:
                acknowledged.insert(order)
                possible.insert(order)
                for item in items[order] ?? [] {
                    lower[item.product, default: 0] -= item.quantity
                    upper[item.product, default: 0] -= item.quantity
                }
                if !["PAID", "COMPLETED"].contains(status[order] ?? "") {
                    tally.add("acknowledged-payment-not-paid", "order \(order): payment acknowledged, status \(status[order] ?? "missing")")
                }
            case .unknown, .fail:
                guard entry.outcome == .unknown || pendingCompensations.contains(order) else { break }
                possible.insert(order)
                for item in items[order] ?? [] { lower[item.product, default: 0] -= item.quantity }
            }
        }
        for (order, state) in status where state == "PAID" && !possible.contains(order) {
            tally.add("paid-without-acknowledgement", "order \(order) is PAID but no payment of it was acknowledged")
        }
        for (product, value) in stock.sorted(by: { $0.key < $1.key }) {
            let low = lower[product] ?? 0, high = upper[product] ?? 0
            if value < low || value > high {
                tally.add(
                    value < low ? "stock-below-acknowledged" : "stock-above-acknowledged",
                    "product \(product): stock \(value), the history allows \(low)…\(high) (initial \(context.initial.stock[product] ?? 0))")
            }
            if (ledger[product] ?? 0) != value {
                tally.add("ledger-mismatch", "product \(product): stock \(value) but the stock ledger sums to \(ledger[product] ?? 0)")
            }
            if value < 0 { tally.add("negative-stock", "product \(product): stock \(value)") }
        }
        return tally.result(name, summary: "\(stock.count) products, \(acknowledged.count) acknowledged payments")
    }
}
