import LockProofCommerce

/// Every failed payment is fully compensated, and no compensation is lost: a PAYMENT_FAILED order
/// has a `succeeded` compensation; no order is left PAYING without a compensation record once the
/// run is over; a `pending` compensation (recorded, not yet carried out) is reported.
final class CompensationChecker: Checker {
    let name = "compensation"
    let operations: Set<OperationName> = [.pay]
    private var declined = 0
    var retainedRecords: Int { 0 }

    func observe(_ entry: HistoryEntry) {
        if entry.reason == "payment_declined" { declined += 1 }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let rows = try context.db.query(
            """
            SELECT o.id, o.status, c.status, c.last_error FROM orders o LEFT JOIN compensations c ON c.order_id = o.id
            WHERE o.status IN ('PAYING', 'PAYMENT_FAILED') OR c.id IS NOT NULL ORDER BY o.id
            """)
        var pending = 0
        for row in 0..<rows.rowCount {
            let order = rows.int(row, 0)!
            let orderStatus = rows.string(row, 1) ?? ""
            let compensation = rows.string(row, 2)
            switch (orderStatus, compensation) {
            case ("PAYMENT_FAILED", "succeeded"): break
            case ("PAYMENT_FAILED", let other):
                tally.add("failed-payment-not-compensated", "order \(order) is PAYMENT_FAILED, compensation \(other ?? "missing")")
            case ("PAYING", nil):
                tally.add("compensation-lost", "order \(order) is still PAYING and no compensation is recorded")
            case (_, "pending"):
                pending += 1
                tally.add("compensation-pending", "order \(order): compensation pending (\(rows.string(row, 3) ?? "no error recorded"))")
            case (let state, "succeeded"):
                tally.add("compensated-order-not-failed", "order \(order) was compensated but is \(state)")
            default: break
            }
        }
        // Durable payments: after recovery no intent is open, and the shop agrees with the gateway:
        // a PAID order was approved by it, a compensated one was not (money taken exactly once).
        let settlement = try context.db.query(
            """
            SELECT o.id, o.status, i.status, g.outcome FROM orders o
            LEFT JOIN payment_intents i ON i.order_id = o.id LEFT JOIN gateway_charges g ON g.order_id = o.id
            WHERE i.order_id IS NOT NULL OR g.order_id IS NOT NULL ORDER BY o.id
            """)
        for row in 0..<settlement.rowCount {
            let order = settlement.int(row, 0)!
            let orderStatus = settlement.string(row, 1) ?? ""
            let intent = settlement.string(row, 2)
            let gateway = settlement.string(row, 3)
            if intent == "open" {
                tally.add("payment-unsettled", "order \(order) is \(orderStatus) with its payment intent still open")
            }
            if gateway == "approved" && orderStatus == "PAYMENT_FAILED" {
                tally.add("charged-and-refunded", "order \(order): the gateway charged it, yet balance and stock were given back")
            }
            if orderStatus == "PAID" && gateway != "approved" {
                tally.add("paid-without-charge", "order \(order) is PAID, the gateway says \(gateway ?? "nothing")")
            }
        }
        context.statistics.setGauge("lockproof_compensations_pending", Double(pending))
        return tally.result(name, summary: "\(declined) declined payments")
    }
}
