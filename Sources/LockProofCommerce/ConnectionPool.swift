import Foundation
import LockProofLocking
import LockProofSync

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

/// The pool was about to hand a session that a borrower still holds to another: refused where it
/// happens (two borrowers on one session would interleave their statements, or hang on its socket),
/// counted, and named in the run's report.
public struct PoolDoubleBorrow: Error, CustomStringConvertible, Sendable, Equatable {
    public let pool: PoolKind
    /// The session's number in its pool (1 for the first opened).
    public let session: Int
    /// Who holds it, and who asked for it.
    public let holder: String
    public let borrower: String
    public var description: String {
        "connection pool handed \(pool.rawValue) session \(session) to two borrowers: \(holder) and \(borrower)"
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
    private let condition = WaitCondition()
    private var idle: [Connection] = []
    private var opened = 0
    private var closed = false
    /// The most connections ever open at once (never above `size`).
    public private(set) var peakOpen = 0
    /// Who holds each borrowed connection, and each connection's number (1 for the first opened).
    private var holders: [ObjectIdentifier: String] = [:]
    private var numbers: [ObjectIdentifier: Int] = [:]
    private var numbered = 0
    private var doubleBorrowCount = 0
    private var firstDoubleBorrowSeen: PoolDoubleBorrow?

    public init(kind: PoolKind, size: Int, waitSeconds: Double, open: @escaping () throws -> Connection) {
        precondition(size > 0)
        self.kind = kind
        self.size = size
        self.waitSeconds = waitSeconds
        self.open = open
    }

    /// A free connection, or a new one while fewer than `size` are open; else waits for one to
    /// come back. Returns it with the seconds spent waiting for it (opening one is not waiting).
    /// `borrower` names who borrows it (`client 4`), for the report of a session handed to two.
    public func borrow(by borrower: String = "a borrower") throws -> (connection: Connection, waitedSeconds: Double) {
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
            defer { condition.unlock() }
            try lend(connection, to: borrower)
            return (connection, waited)
        }
        opened += 1
        peakOpen = max(peakOpen, opened)
        condition.unlock()
        let connection: Connection
        do {
            connection = try open()
        } catch {
            discard(nil)
            throw error
        }
        condition.lock()
        defer { condition.unlock() }
        numbered += 1
        numbers[ObjectIdentifier(connection)] = numbered
        try lend(connection, to: borrower)
        return (connection, waited)
    }

    /// Records `borrower` as the connection's holder; refuses (and counts) a connection held already.
    /// Under `condition`.
    private func lend(_ connection: Connection, to borrower: String) throws {
        let id = ObjectIdentifier(connection)
        if let holder = holders[id] {
            let twice = PoolDoubleBorrow(pool: kind, session: numbers[id] ?? 0, holder: holder, borrower: borrower)
            doubleBorrowCount += 1
            if firstDoubleBorrowSeen == nil { firstDoubleBorrowSeen = twice }
            throw twice
        }
        holders[id] = borrower
    }

    /// Sessions the pool was about to hand to a second borrower (each refused), and the first.
    public var doubleBorrows: (count: Int, first: PoolDoubleBorrow?) {
        condition.lock()
        defer { condition.unlock() }
        return (doubleBorrowCount, firstDoubleBorrowSeen)
    }

    public func giveBack(_ connection: Connection) {
        condition.lock()
        holders[ObjectIdentifier(connection)] = nil
        if !closed { idle.append(connection) } else { forget(connection) }
        condition.signal()
        condition.unlock()
    }

    /// A borrowed connection that is broken beyond repair (nil: one that could not be opened):
    /// dropped, its place can be refilled.
    public func discard(_ connection: Connection?) {
        condition.lock()
        if let connection { holders[ObjectIdentifier(connection)] = nil }
        forget(connection)
        condition.signal()
        condition.unlock()
    }

    /// One connection fewer open (its number is free for reuse by a new object). Under `condition`.
    private func forget(_ connection: Connection?) {
        opened -= 1
        if let connection { numbers[ObjectIdentifier(connection)] = nil }
    }

    /// Drops the idle connections (closing them) and every connection given back from now on.
    public func close() {
        condition.lock()
        closed = true
        opened -= idle.count
        for connection in idle { numbers[ObjectIdentifier(connection)] = nil }
        idle.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
