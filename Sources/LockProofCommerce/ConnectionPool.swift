import Foundation
import LockProofLocking

/// A wait for a pooled connection ran out (every connection stayed borrowed for the whole bound):
/// a typed failure, never a hang. The operation did not start its transaction.
public struct PoolTimeout: Error, CustomStringConvertible, Sendable {
    public let pool: PoolKind
    public let size: Int
    public let waitedSeconds: Double
    public var description: String {
        "no \(pool.rawValue) connection free in a pool of \(size) after \(String(format: "%.3f", waitedSeconds)) s"
    }
}

/// A bounded pool of connections shared by virtual users, as an application's pool (HikariCP) is:
/// at most `size` connections, opened on first need, borrowed and given back; a borrower waits
/// at most `waitSeconds` for one.
public final class ConnectionPool<Connection: AnyObject>: @unchecked Sendable {
    public let kind: PoolKind
    public let size: Int
    public let waitSeconds: Double
    private let open: () throws -> Connection
    private let condition = NSCondition()
    private var idle: [Connection] = []
    private var opened = 0
    private var closed = false
    /// The most connections ever open at once (never above `size`).
    public private(set) var peakOpen = 0

    public init(kind: PoolKind, size: Int, waitSeconds: Double, open: @escaping () throws -> Connection) {
        precondition(size > 0)
        self.kind = kind
        self.size = size
        self.waitSeconds = waitSeconds
        self.open = open
    }

    /// A free connection, or a new one while fewer than `size` are open; else waits for one to
    /// come back. Returns it with the seconds spent waiting for it (opening one is not waiting).
    public func borrow() throws -> (connection: Connection, waitedSeconds: Double) {
        let started = monotonicSeconds()
        let deadline = Date(timeIntervalSinceNow: waitSeconds)
        condition.lock()
        while idle.isEmpty && opened >= size {
            if !condition.wait(until: deadline) && idle.isEmpty && opened >= size {
                condition.unlock()
                throw PoolTimeout(pool: kind, size: size, waitedSeconds: monotonicSeconds() - started)
            }
        }
        let waited = monotonicSeconds() - started
        if let connection = idle.popLast() {
            condition.unlock()
            return (connection, waited)
        }
        opened += 1
        peakOpen = max(peakOpen, opened)
        condition.unlock()
        do {
            return (try open(), waited)
        } catch {
            discard()
            throw error
        }
    }

    public func giveBack(_ connection: Connection) {
        condition.lock()
        if !closed { idle.append(connection) } else { opened -= 1 }
        condition.signal()
        condition.unlock()
    }

    /// A borrowed connection that is broken beyond repair: dropped, its place can be refilled.
    public func discard() {
        condition.lock()
        opened -= 1
        condition.signal()
        condition.unlock()
    }

    /// Drops the idle connections (closing them) and every connection given back from now on.
    public func close() {
        condition.lock()
        closed = true
        opened -= idle.count
        idle.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
