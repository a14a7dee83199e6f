import LockProofPostgres

/// The final state of an implementation, read with its target file's `state` queries (issue 18):
/// each query runs once, on first use, and its rows (by the column names the format fixes) give
/// the checkers what `DatabaseState` gives them from LockProof's tables. A kind the target does not
/// map reads as nil. Ledgers hold the run's movements, so the seeded openings are added to their sums.
public final class TargetState: FinalState {
    private let target: Target
    private let db: PostgresConnection
    private let initial: InitialState
    private var cache: [Target.StateKind: [[String: String?]]] = [:]

    public init(target: Target, db: PostgresConnection, initial: InitialState) {
        self.target = target
        self.db = db
        self.initial = initial
    }

    /// The rows of `kind` (each its kind's columns by name), nil when the target maps no such query.
    func rows(_ kind: Target.StateKind) throws -> [[String: String?]]? {
        if let cached = cache[kind] { return cached }
        guard let statement = target.state[kind] else { return nil }
        var query = statement.sql.trimmingCharacters(in: .whitespacesAndNewlines)
        while query.hasSuffix(";") { query = String(query.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        let result: PostgresResult
        do {
            result = try db.query("SELECT * FROM (\n\(query)\n) AS lockproof_state")
        } catch {
            throw TargetResolutionError(file: target.file, message: "\(statement.line): state.\(kind.rawValue): \(error)")
        }
        let columns = kind.columns.map { name in (name, (0..<result.columnCount).first { result.columnName($0) == name }) }
        var rows: [[String: String?]] = []
        for row in 0..<result.rowCount {
            var values: [String: String?] = [:]
            for (name, column) in columns { values[name] = column.flatMap { result.string(row, $0) } }
            rows.append(values)
        }
        cache[kind] = rows
        return rows
    }

    private func int(_ row: [String: String?], _ column: String) -> Int? {
        guard let text = row[column] ?? nil else { return nil }
        return Int(text) ?? Double(text).flatMap { $0 == $0.rounded() ? Int(exactly: $0) : nil }
    }

    private func text(_ row: [String: String?], _ column: String) -> String? { row[column] ?? nil }

    /// key column → value column, summed over rows.
    private func sums(_ kind: Target.StateKind, _ key: String, _ value: String, where keep: ([String: String?]) -> Bool = { _ in true })
        throws -> [Int: Int]?
    {
        guard let rows = try rows(kind) else { return nil }
        var result: [Int: Int] = [:]
        for row in rows where keep(row) {
            guard let id = int(row, key) else { continue }
            result[id, default: 0] += value == "*" ? 1 : int(row, value) ?? 0
        }
        return result
    }

    public func balances() throws -> [Int: Int]? { try sums(.balances, "user", "balance") }

    public func balanceLedgerSums() throws -> [Int: Int]? {
        guard var sums = try sums(.balanceLedger, "user", "delta") else { return nil }
        for (user, opening) in initial.balances where opening != 0 { sums[user, default: 0] += opening }
        return sums
    }

    public func chargeEntriesByUser() throws -> [Int: Int]? {
        try sums(.balanceLedger, "user", "*") { self.text($0, "reason") == "charge" }
    }

    public func chargeEntriesByReference() throws -> [String: Int]? {
        guard let rows = try rows(.balanceLedger) else { return nil }
        var result: [String: Int] = [:]
        for row in rows where text(row, "reason") == "charge" {
            if let reference = text(row, "reference") { result[reference, default: 0] += 1 }
        }
        return result
    }

    public func orderLedgerEntries() throws -> [Int: (payments: Int, compensations: Int)]? {
        guard let rows = try rows(.balanceLedger) else { return nil }
        var result: [Int: (payments: Int, compensations: Int)] = [:]
        for row in rows {
            guard let reason = text(row, "reason"), reason == "payment" || reason == "compensation",
                let reference = text(row, "reference"), reference.hasPrefix("order:"), let order = Int(reference.dropFirst(6))
            else { continue }
            var entry = result[order] ?? (0, 0)
            if reason == "payment" { entry.payments += 1 } else { entry.compensations += 1 }
            result[order] = entry
        }
        return result
    }

    public func orders() throws -> [Int: FinalOrder]? {
        guard let rows = try rows(.orders) else { return nil }
        var result: [Int: FinalOrder] = [:]
        for row in rows {
            guard let order = int(row, "order") else { continue }
            result[order] = FinalOrder(user: int(row, "user") ?? 0, total: int(row, "total") ?? 0, status: text(row, "status") ?? "")
        }
        return result
    }

    public func pendingCompensationOrders() throws -> Set<Int> {
        guard let rows = try rows(.compensations) else { return [] }
        return Set(rows.filter { text($0, "status") == "pending" }.compactMap { int($0, "order") })
    }

    public func stock() throws -> [Int: Int]? { try sums(.stock, "product", "stock") }

    public func stockLedgerSums() throws -> [Int: Int]? {
        guard var sums = try sums(.stockLedger, "product", "delta") else { return nil }
        for (product, opening) in initial.stock where opening != 0 { sums[product, default: 0] += opening }
        return sums
    }

    public func orderItems() throws -> [FinalOrderItem]? {
        try rows(.orderItems)?.compactMap { row in
            guard let order = int(row, "order"), let product = int(row, "product") else { return nil }
            return FinalOrderItem(order: order, product: product, quantity: int(row, "quantity") ?? 0)
        }
    }

    public func coupon(_ id: Int) throws -> (total: Int, issued: Int)? {
        guard let rows = try rows(.coupons) else { return nil }
        guard let row = rows.first(where: { int($0, "coupon") == id }) else { return (0, 0) }
        return (int(row, "total") ?? 0, int(row, "issued") ?? 0)
    }

    public func couponHolders(_ id: Int) throws -> [Int: Int]? {
        try sums(.couponIssues, "user", "*") { self.int($0, "coupon") == id }
    }

    public func cartLines() throws -> [FinalCartLine]? {
        try rows(.cartLines)?.compactMap { row in
            guard let user = int(row, "user"), let product = int(row, "product") else { return nil }
            return FinalCartLine(user: user, product: product, quantity: int(row, "quantity") ?? 0)
        }
    }

    public func spendingLimits() throws -> [Int: Int]? { try sums(.spendingLimits, "user", "daily_limit") }

    public func spendDays() throws -> [FinalSpendDay]? {
        guard let rows = try rows(.spends) else { return nil }
        var days: [String: FinalSpendDay] = [:]
        for row in rows {
            guard let user = int(row, "user") else { continue }
            let day = text(row, "day") ?? "?", key = "\(user) \(day)"
            let before = days[key]
            days[key] = FinalSpendDay(
                user: user, day: day, amount: (before?.amount ?? 0) + (int(row, "amount") ?? 0), count: (before?.count ?? 0) + 1)
        }
        return days.values.sorted { ($0.user, $0.day) < ($1.user, $1.day) }
    }
}
