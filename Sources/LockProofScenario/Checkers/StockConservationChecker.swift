import LockProofCommerce

/// Stock is conserved: for every product, final stock = initial − what acknowledged payments took
/// (widened by unknown payments), the stock ledger sums to the stock, nothing went below zero;
/// every acknowledged payment left its order PAID, and no order is PAID without an acknowledged or
/// unknown payment.
///
/// Per order it keeps the payment outcomes: never the entries.
final class StockConservationChecker: Checker {
    let name = "stock-conservation"
    let operations: Set<OperationName> = [.pay]

    private var payments: [Int: OutcomeCounts] = [:]
    var retainedRecords: Int { payments.count }

    func observe(_ entry: HistoryEntry) {
        payments[entry.arguments["order"]!, default: OutcomeCounts()].add(entry.outcome)
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let stock = try context.state.stock() ?? [:]
        // nil: a target that maps no stock ledger; the ledger check is left out.
        let ledger = try context.state.stockLedgerSums()
        var items: [Int: [(product: Int, quantity: Int)]] = [:]
        for item in try context.state.orderItems() ?? [] { items[item.order, default: []].append((item.product, item.quantity)) }
        let status = (try context.state.orders() ?? [:]).mapValues(\.status)
        let pendingCompensations = try context.state.pendingCompensationOrders()

        var lower = context.initial.stock
        var upper = context.initial.stock
        var acknowledged = 0
        var possible = Set<Int>()
        for (order, outcomes) in payments.sorted(by: { $0.key < $1.key }) {
            let maybe = outcomes.unknown + (pendingCompensations.contains(order) ? outcomes.fail : 0)
            if outcomes.ok + maybe > 0 { possible.insert(order) }
            acknowledged += outcomes.ok
            for item in items[order] ?? [] {
                lower[item.product, default: 0] -= item.quantity * (outcomes.ok + maybe)
                upper[item.product, default: 0] -= item.quantity * outcomes.ok
            }
            if outcomes.ok > 0 && !["PAID", "COMPLETED"].contains(status[order] ?? "") {
                tally.add(
                    "acknowledged-payment-not-paid", count: outcomes.ok,
                    "order \(order): payment acknowledged, status \(status[order] ?? "missing")")
            }
        }
        for (order, state) in status.sorted(by: { $0.key < $1.key }) where state == "PAID" && !possible.contains(order) {
            tally.add("paid-without-acknowledgement", "order \(order) is PAID but no payment of it was acknowledged")
        }
        for (product, value) in stock.sorted(by: { $0.key < $1.key }) {
            let initial = context.initial.stock[product] ?? 0
            let low = lower[product] ?? 0, high = upper[product] ?? 0
            let ledgerSum = ledger.map { $0[product] ?? 0 } ?? value
            if high < 0 {
                tally.add(
                    "negative-stock",
                    "product \(product): acknowledged payments take the stock from \(initial) to \(high); stock \(value), ledger sums to \(ledgerSum)",
                    evidence: ViolationEvidence(subject: ["product": product], observed: high, expected: 0))
            } else if value < 0 || ledgerSum < 0 {
                tally.add("negative-stock", "product \(product): stock \(value), ledger sums to \(ledgerSum)")
            } else if value < low || value > high {
                tally.add(
                    value < low ? "stock-below-acknowledged" : "stock-above-acknowledged",
                    "product \(product): stock \(value), the history allows \(low)…\(high) (initial \(initial))",
                    evidence: ViolationEvidence(subject: ["product": product], observed: value, expected: value < low ? low : high))
            }
            if ledgerSum != value {
                tally.add("ledger-mismatch", "product \(product): stock \(value) but the stock ledger sums to \(ledgerSum)")
            }
        }
        return tally.result(name, summary: "\(stock.count) products, \(acknowledged) acknowledged payments")
    }
}
