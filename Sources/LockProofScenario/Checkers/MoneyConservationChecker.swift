import LockProofCommerce

/// Money is conserved: for every user, the final balance lies between the bounds the history
/// allows (initial + acknowledged charges − acknowledged payments, widened by each unknown
/// operation), the balance ledger sums to the balance, nothing is negative, and no charge was
/// applied more often than it was attempted. With idempotency keys: an "already applied" answer
/// is right only when another operation with the same key applied it (acknowledged) or may have
/// (unknown), and every acknowledged key is in the ledger exactly once. Everything it judges
/// comes from the database, never from the balances the system reported.
struct MoneyConservationChecker: Checker {
    let name = "money-conservation"

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let balances = try context.db.pairs("SELECT id, balance FROM users")
        let ledger = try context.db.pairs("SELECT user_id, sum(delta)::bigint FROM balance_ledger GROUP BY user_id")
        let chargeEntries = try context.db.pairs(
            "SELECT user_id, count(*) FROM balance_ledger WHERE reason = 'charge' GROUP BY user_id")
        let orderOwners = try context.db.pairs("SELECT id, user_id FROM orders")
        let orderTotals = try context.db.pairs("SELECT id, total_amount FROM orders")
        // A recorded but not yet carried out compensation leaves money out until it is repaired.
        let pendingCompensations = try context.db.pairs(
            "SELECT o.id, o.total_amount FROM compensations c JOIN orders o ON o.id = c.order_id WHERE c.status = 'pending'")

        let keyedCharges = try chargesByKey(context)

        var lower = context.initial.balances
        var upper = context.initial.balances
        var chargesApplied: [Int: (acknowledged: Int, possible: Int)] = [:]
        for entry in context.history {
            switch (entry.operation, entry.outcome) {
            case ("charge", .ok):
                let user = entry.arguments["user"]!, amount = entry.arguments["amount"]!
                if entry.result?["applied"] != 0 {
                    lower[user, default: 0] += amount
                    upper[user, default: 0] += amount
                    chargesApplied[user, default: (0, 0)].acknowledged += 1
                    chargesApplied[user, default: (0, 0)].possible += 1
                } else if !keyedCharges.appliedByAnother(entry) {
                    tally.add(
                        "already-applied-key-never-applied",
                        "client \(entry.client) op \(entry.index): charge of \(amount) to user \(user) answered 'already applied' for key \(entry.key ?? "(none)"), but no other operation applied that key")
                }
            case ("charge", .unknown):
                upper[entry.arguments["user"]!, default: 0] += entry.arguments["amount"]!
                chargesApplied[entry.arguments["user"]!, default: (0, 0)].possible += 1
            case ("pay", .ok):
                let order = entry.arguments["order"]!
                let user = orderOwners[order]!, total = orderTotals[order]!
                lower[user, default: 0] -= total
                upper[user, default: 0] -= total
            case ("pay", .unknown), ("pay", .fail):
                // It may have taken the money: an unknown ending, or a compensation still pending.
                let order = entry.arguments["order"]!
                guard entry.outcome == .unknown || pendingCompensations[order] != nil else { break }
                if let user = orderOwners[order], let total = orderTotals[order] { lower[user, default: 0] -= total }
            default: break
            }
        }
        for (user, balance) in balances.sorted(by: { $0.key < $1.key }) {
            let low = lower[user] ?? context.initial.balances[user] ?? 0
            let high = upper[user] ?? context.initial.balances[user] ?? 0
            if balance < low || balance > high {
                tally.add(
                    balance < low ? "balance-below-acknowledged" : "balance-above-acknowledged",
                    "user \(user): balance \(balance), the history allows \(low)…\(high) (initial \(context.initial.balances[user] ?? 0))")
            }
            if (ledger[user] ?? 0) != balance {
                tally.add("ledger-mismatch", "user \(user): balance \(balance) but the ledger sums to \(ledger[user] ?? 0)")
            }
            if balance < 0 { tally.add("negative-balance", "user \(user): balance \(balance)") }
            let applied = chargeEntries[user] ?? 0
            let bounds = chargesApplied[user] ?? (0, 0)
            if applied > bounds.possible {
                tally.add("charge-applied-twice", "user \(user): \(applied) charges in the ledger, at most \(bounds.possible) attempted")
            } else if applied < bounds.acknowledged {
                tally.add("acknowledged-charge-missing", "user \(user): \(bounds.acknowledged) charges acknowledged, \(applied) in the ledger")
            }
        }
        for (key, acknowledged) in keyedCharges.acknowledged.sorted(by: { $0.key < $1.key }) {
            let inLedger = keyedCharges.ledgerRows[key] ?? 0
            if inLedger == 0 {
                tally.add("acknowledged-charge-missing", "key \(key): \(acknowledged) charges acknowledged, none in the ledger")
            }
        }
        for (key, rows) in keyedCharges.ledgerRows.sorted(by: { $0.key < $1.key }) where rows > 1 {
            tally.add("charge-applied-twice", "key \(key): \(rows) charges in the ledger for one idempotency key")
        }
        let operations = context.history.filter { $0.operation == "charge" || $0.operation == "pay" }.count
        return tally.result(name, summary: "\(balances.count) users, \(operations) charges and payments")
    }
}

/// The charges sent with idempotency keys, from the history and from the ledger.
struct KeyedCharges {
    /// Per key, the operations that applied it (acknowledged with applied = 1) or may have (unknown).
    var appliers: [String: [HistoryEntry]] = [:]
    /// Per key, how many acknowledged operations (applied or "already applied") sent it.
    var acknowledged: [String: Int] = [:]
    /// Per key, the charge rows in the balance ledger (the charge's reference is its key).
    var ledgerRows: [String: Int] = [:]

    /// An "already applied" answer is right when another operation with the same key, started
    /// before this one ended, applied it or may have.
    func appliedByAnother(_ entry: HistoryEntry) -> Bool {
        guard let key = entry.key else { return false }
        return appliers[key, default: []].contains {
            !($0.client == entry.client && $0.index == entry.index) && $0.start <= entry.end
        }
    }
}

extension MoneyConservationChecker {
    func chargesByKey(_ context: CheckContext) throws -> KeyedCharges {
        var charges = KeyedCharges()
        for entry in context.history where entry.operation == "charge" {
            guard let key = entry.key else { continue }
            if entry.outcome == .unknown || (entry.outcome == .ok && entry.result?["applied"] != 0) {
                charges.appliers[key, default: []].append(entry)
            }
            if entry.outcome == .ok { charges.acknowledged[key, default: 0] += 1 }
        }
        guard !charges.acknowledged.isEmpty || !charges.appliers.isEmpty else { return charges }
        let rows = try context.db.query(
            "SELECT reference, count(*) FROM balance_ledger WHERE reason = 'charge' GROUP BY reference")
        for row in 0..<rows.rowCount {
            if let key = rows.string(row, 0), charges.acknowledged[key] != nil || charges.appliers[key] != nil {
                charges.ledgerRows[key] = rows.int(row, 1) ?? 0
            }
        }
        return charges
    }
}
