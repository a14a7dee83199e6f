import LockProofCommerce

/// Money is conserved: for every user, the final balance lies between the bounds the history
/// allows (initial + acknowledged charges − acknowledged payments, widened by each unknown
/// operation), the balance ledger sums to the balance, nothing went below zero, and no charge was
/// applied more often than it was attempted. With idempotency keys: an "already applied" answer
/// is right only when another operation with the same key applied it (acknowledged) or may have
/// (unknown), and every acknowledged key is in the ledger exactly once. Everything it judges
/// comes from the database, never from the balances the system reported. An order is paid at
/// most once: never two acknowledged payments of it, never two payments in the ledger that no
/// compensation gave back (the bounds alone would accept both, money moving as acknowledged).
///
/// Per user it keeps the charge bounds, per order the payment outcomes, per idempotency key the
/// operations that sent it (a key is a ledger row as well): never the history.
final class MoneyConservationChecker: Checker {
    let name = "money-conservation"
    let operations: Set<OperationName> = [.charge, .pay]

    private struct UserCharges {
        var acknowledgedAmount = 0
        var unknownAmount = 0
        var acknowledged = 0
        var possible = 0
    }
    private var charges: [Int: UserCharges] = [:]
    private var payments: [Int: OutcomeCounts] = [:]
    private var keys = KeyedCharges()
    private var observed = 0

    var retainedRecords: Int { charges.count + payments.count + keys.retainedRecords }

    func observe(_ entry: HistoryEntry) {
        observed += 1
        switch (entry.operation, entry.outcome) {
        case (.charge, .ok):
            let user = entry.arguments["user"]!, amount = entry.arguments["amount"]!
            keys.observe(entry)
            // A replayed idempotent charge returns ok without applying it again.
            guard entry.result?["applied"] != 0 else { break }
            charges[user, default: UserCharges()].acknowledgedAmount += amount
            charges[user, default: UserCharges()].acknowledged += 1
            charges[user, default: UserCharges()].possible += 1
        case (.charge, .unknown):
            keys.observe(entry)
            charges[entry.arguments["user"]!, default: UserCharges()].unknownAmount += entry.arguments["amount"]!
            charges[entry.arguments["user"]!, default: UserCharges()].possible += 1
        case (.pay, let outcome):
            payments[entry.arguments["order"]!, default: OutcomeCounts()].add(outcome)
        default: break
        }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        var tally = ViolationTally()
        let state = context.state
        let balances = try state.balances() ?? [:]
        // nil: a target that maps no balance ledger; the checks on it are left out.
        let ledger = try state.balanceLedgerSums()
        let chargeEntries = try state.chargeEntriesByUser()
        let orders = try state.orders() ?? [:]
        // A recorded but not yet carried out compensation leaves money out until it is repaired.
        let pendingCompensations = try state.pendingCompensationOrders()

        var lower = context.initial.balances
        var upper = context.initial.balances
        for (user, charged) in charges {
            lower[user, default: 0] += charged.acknowledgedAmount
            upper[user, default: 0] += charged.acknowledgedAmount + charged.unknownAmount
        }
        for (order, outcomes) in payments {
            guard let owner = orders[order] else { continue }
            let user = owner.user, total = owner.total
            lower[user, default: 0] -= total * outcomes.ok
            upper[user, default: 0] -= total * outcomes.ok
            // It may have taken the money: an unknown ending, or a failure whose compensation is pending.
            let maybe = outcomes.unknown + (pendingCompensations.contains(order) ? outcomes.fail : 0)
            lower[user, default: 0] -= total * maybe
        }
        keys.checkClaims(&tally)
        for (user, balance) in balances.sorted(by: { $0.key < $1.key }) {
            let initial = context.initial.balances[user] ?? 0
            let low = lower[user] ?? initial
            let high = upper[user] ?? initial
            let ledgerSum = ledger.map { $0[user] ?? 0 } ?? balance
            if high < 0 {
                // Even the most favourable reading of the history leaves the user below zero: the
                // acknowledged operations spent money that was not there. That, not a bound, is the news.
                tally.add(
                    "negative-balance",
                    "user \(user): acknowledged operations take the balance from \(initial) to \(high); balance \(balance), ledger sums to \(ledgerSum)",
                    evidence: ViolationEvidence(subject: ["user": user], observed: high, expected: 0))
            } else if balance < 0 || ledgerSum < 0 {
                tally.add("negative-balance", "user \(user): balance \(balance), ledger sums to \(ledgerSum)")
            } else if balance < low || balance > high {
                tally.add(
                    balance < low ? "balance-below-acknowledged" : "balance-above-acknowledged",
                    "user \(user): balance \(balance), the history allows \(low)…\(high) (initial \(initial))",
                    evidence: ViolationEvidence(subject: ["user": user], observed: balance, expected: balance < low ? low : high))
            }
            if ledgerSum != balance {
                tally.add(
                    "ledger-mismatch", "user \(user): balance \(balance) but the ledger sums to \(ledgerSum)",
                    evidence: ViolationEvidence(subject: ["user": user], observed: balance, expected: ledgerSum))
            }
            let bounds = charges[user] ?? UserCharges()
            guard let chargeEntries else { continue }
            let applied = chargeEntries[user] ?? 0
            if applied > bounds.possible {
                tally.add("charge-applied-twice", "user \(user): \(applied) charges in the ledger, at most \(bounds.possible) attempted")
            } else if applied < bounds.acknowledged {
                tally.add("acknowledged-charge-missing", "user \(user): \(bounds.acknowledged) charges acknowledged, \(applied) in the ledger")
            }
        }
        try keys.checkLedger(context, &tally)
        try checkOrdersPaidOnce(context, &tally)
        return tally.result(name, summary: "\(balances.count) users, \(observed) charges and payments")
    }
}

extension MoneyConservationChecker {
    /// Per order: acknowledged payments, and payments in the balance ledger less the compensations
    /// that gave them back (both carry the reference `order:ID`). More than one of either is an
    /// order paid twice.
    fileprivate func checkOrdersPaidOnce(_ context: CheckContext, _ tally: inout ViolationTally) throws {
        // Without a balance ledger, only the acknowledged payments are counted.
        let ledger = try context.state.orderLedgerEntries() ?? [:]
        for order in Set(ledger.keys).union(payments.keys).sorted() {
            let acknowledged = payments[order]?.ok ?? 0
            let entries = ledger[order] ?? (0, 0)
            if acknowledged > 1 || entries.payments - entries.compensations > 1 {
                tally.add(
                    "order-paid-twice",
                    "order \(order): \(acknowledged) payments acknowledged, \(entries.payments) in the balance ledger, \(entries.compensations) compensated; an order is paid once",
                    evidence: ViolationEvidence(
                        subject: ["order": order], observed: max(acknowledged, entries.payments - entries.compensations), expected: 1))
            }
        }
    }
}

/// The charges sent with idempotency keys: per key, who applied it and who was told it already was.
struct KeyedCharges {
    private struct Sender {
        let client: Int
        let index: Int
        let start: Double
        let end: Double
        let user: Int
        let amount: Int
    }
    private struct Record {
        /// Operations that applied the key (acknowledged with applied = 1) or may have (unknown).
        var appliers: [Sender] = []
        /// Acknowledged operations that were answered "already applied".
        var claims: [Sender] = []
        /// Acknowledged operations (applied or "already applied").
        var acknowledged = 0
    }
    private var records: [String: Record] = [:]
    /// "Already applied" answers to charges sent without a key: never right.
    private var keylessClaims = 0
    private var firstKeylessClaim: String?

    var retainedRecords: Int { records.values.reduce(0) { $0 + 1 + $1.appliers.count + $1.claims.count } + (firstKeylessClaim == nil ? 0 : 1) }

    /// An acknowledged or unknown charge.
    mutating func observe(_ entry: HistoryEntry) {
        let sender = Sender(
            client: entry.client, index: entry.index, start: entry.start, end: entry.end, user: entry.arguments["user"]!,
            amount: entry.arguments["amount"]!)
        let claimsAlreadyApplied = entry.outcome == .ok && entry.result?["applied"] == 0
        guard let key = entry.key else {
            if claimsAlreadyApplied {
                keylessClaims += 1
                if firstKeylessClaim == nil { firstKeylessClaim = Self.claimExample(sender, key: "(none)") }
            }
            return
        }
        if claimsAlreadyApplied { records[key, default: Record()].claims.append(sender) } else { records[key, default: Record()].appliers.append(sender) }
        if entry.outcome == .ok { records[key, default: Record()].acknowledged += 1 }
    }

    private static func claimExample(_ claim: Sender, key: String) -> String {
        "client \(claim.client) op \(claim.index): charge of \(claim.amount) to user \(claim.user) answered 'already applied' for key \(key), but no other operation applied that key"
    }

    /// An "already applied" answer is right when another operation with the same key, started
    /// before this one ended, applied it or may have.
    func checkClaims(_ tally: inout ViolationTally) {
        tally.add("already-applied-key-never-applied", count: keylessClaims, firstKeylessClaim ?? "")
        for (key, record) in records.sorted(by: { $0.key < $1.key }) {
            for claim in record.claims {
                let appliedByAnother = record.appliers.contains {
                    !($0.client == claim.client && $0.index == claim.index) && $0.start <= claim.end
                }
                if !appliedByAnother { tally.add("already-applied-key-never-applied", Self.claimExample(claim, key: key)) }
            }
        }
    }

    /// Every acknowledged key has its charge in the ledger (the charge's reference is its key), once.
    func checkLedger(_ context: CheckContext, _ tally: inout ViolationTally) throws {
        guard !records.isEmpty, let references = try context.state.chargeEntriesByReference() else { return }
        let ledgerRows = references.filter { records[$0.key] != nil }
        for (key, record) in records.sorted(by: { $0.key < $1.key }) where record.acknowledged > 0 && (ledgerRows[key] ?? 0) == 0 {
            tally.add("acknowledged-charge-missing", "key \(key): \(record.acknowledged) charges acknowledged, none in the ledger")
        }
        for (key, count) in ledgerRows.sorted(by: { $0.key < $1.key }) where count > 1 {
            tally.add("charge-applied-twice", "key \(key): \(count) charges in the ledger for one idempotency key")
        }
    }
}
