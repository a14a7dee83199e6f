import Foundation
import LockProofPostgres

/// Tables whose rows the cases lock; a fixed set, so their names are safe in SQL text.
public enum LockableTable: String, Sendable {
    case users
    case products
    case coupons
    case orders
    case cartItems = "cart_items"
}

/// Runs `body` as one transaction, recording the server conflicts it hits on the probe, and how
/// long the row locks `lockRowsForUpdate` took in it were held (they last until the transaction ends).
@discardableResult
public func transaction<T>(
    _ connection: PostgresConnection, isolation: IsolationLevel = .readCommitted, probe: Probe,
    _ body: (PostgresConnection) throws -> T
) throws -> T {
    let enclosing = RowLockClock.start()
    defer {
        if let since = RowLockClock.firstAcquired { probe.record(.lockHeld(.row, seconds: monotonicSeconds() - since)) }
        RowLockClock.restore(enclosing)
    }
    do {
        return try connection.transaction(isolation: isolation, body)
    } catch {
        probe.observe(error)
        throw error
    }
}

/// When the running transaction of this thread took its first row lock. Per thread, because each
/// virtual client runs its transactions on its own thread.
enum RowLockClock {
    /// A pthread key rather than `Thread.current.threadDictionary`: the dictionary boxes the value
    /// and hashes an NSString key on every access, about 7,000 instructions per transaction under
    /// callgrind (docs/BENCH.md); a thread-specific slot costs a few.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The time stored in the slot as the pointer's bit pattern; a null pointer means none.
    static var firstAcquired: Double? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Double(bitPattern: UInt64(UInt(bitPattern: pointer)))
    }

    private static func store(_ seconds: Double?) {
        let pointer = seconds.flatMap { UnsafeMutableRawPointer(bitPattern: UInt($0.bitPattern)) }
        pthread_setspecific(key, pointer)
    }

    /// Starts a transaction's clock; returns the enclosing one's, for `restore`.
    static func start() -> Double? {
        let enclosing = firstAcquired
        store(nil)
        return enclosing
    }

    static func restore(_ enclosing: Double?) { store(enclosing) }

    static func acquired(at seconds: Double) {
        if firstAcquired == nil { store(seconds) }
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
    let order = ids.count == 1 ? ids : ascending ? Array(Set(ids)).sorted() : uniqued(ids)
    var rows: [Int: PostgresResult] = [:]
    let started = monotonicSeconds()
    do {
        for id in order {
            let result = try connection.query(
                "SELECT \(columns) FROM \(table.rawValue) WHERE id = $1 FOR UPDATE", [id])
            if result.rowCount == 1 {
                rows[id] = result
                RowLockClock.acquired(at: monotonicSeconds())
            }
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
