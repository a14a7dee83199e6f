import LockProofPostgres

/// Tables whose rows the cases lock; a fixed set, so their names are safe in SQL text.
public enum LockableTable: String, Sendable {
    case users
    case products
    case coupons
    case orders
    case cartItems = "cart_items"
}

/// Runs `body` as one transaction, recording the server conflicts it hits on the probe.
@discardableResult
public func transaction<T>(
    _ connection: PostgresConnection, isolation: IsolationLevel = .readCommitted, probe: Probe,
    _ body: (PostgresConnection) throws -> T
) throws -> T {
    do {
        return try connection.transaction(isolation: isolation, body)
    } catch {
        probe.observe(error)
        throw error
    }
}

/// Pessimistic locking: `SELECT … FOR UPDATE`, one row at a time in the order given, so that the
/// lock order is exactly the caller's. `ascending` sorts the ids first, as deadlock freedom needs.
/// Returns the ids that exist; the time spent waiting is recorded as a row lock wait.
@discardableResult
public func lockRowsForUpdate(
    _ connection: PostgresConnection, table: LockableTable, ids: [Int], ascending: Bool = true,
    columns: String = "id", probe: Probe
) throws -> [Int: PostgresResult] {
    let order = ascending ? Array(Set(ids)).sorted() : uniqued(ids)
    var rows: [Int: PostgresResult] = [:]
    let started = monotonicSeconds()
    do {
        for id in order {
            let result = try connection.query(
                "SELECT \(columns) FROM \(table.rawValue) WHERE id = $1 FOR UPDATE", [id])
            if result.rowCount == 1 { rows[id] = result }
        }
    } catch let error as PostgresError {
        if error.kind == .lockNotAvailable { probe.record(.lockAcquireFailed(.row, .timeout)) }
        else if error.kind != .deadlock { probe.record(.lockAcquireFailed(.row, .error)) }
        throw error
    }
    probe.record(.lockWaited(.row, seconds: monotonicSeconds() - started))
    return rows
}

private func uniqued(_ ids: [Int]) -> [Int] {
    var seen = Set<Int>()
    return ids.filter { seen.insert($0).inserted }
}
