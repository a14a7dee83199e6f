import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofTestSupport
import Synchronization
import XCTest

/// `workload.connections`: virtual users borrow from bounded pools of real connections.
final class ConnectionPoolTests: XCTestCase {
    private func postgresPool(size: Int, wait: Double) -> ConnectionPool<PostgresConnection> {
        ConnectionPool(kind: .postgres, size: size, waitSeconds: wait) { try TestServers.database() }
    }

    func testEightClientsShareTwoSessionsAndNeverOpenAThird() throws {
        let pool = postgresPool(size: 2, wait: 10)
        let barrier = StartBarrier(parties: 8)
        let group = DispatchGroup()
        let backends = LockedSet()
        for _ in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                barrier.arriveAndWait()
                for _ in 0..<5 {
                    guard let (connection, _) = try? pool.borrow() else { return backends.insert(-1) }
                    if let pid = try? connection.query("SELECT pg_backend_pid(), pg_sleep(0.005)").int(0, 0) { backends.insert(pid) }
                    pool.giveBack(connection)
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "a hang")
        XCTAssertFalse(backends.values.contains(-1), "no borrow failed")
        XCTAssertLessThanOrEqual(backends.values.count, 2, "two sessions served every client")
        XCTAssertEqual(pool.peakOpen, 2)
    }

    func testAnExhaustedPoolFailsWithATypedTimeoutNotAHang() throws {
        let pool = postgresPool(size: 1, wait: 0.2)
        let (held, _) = try pool.borrow()
        XCTAssertThrowsError(try pool.borrow()) { error in
            guard let timeout = error as? PoolTimeout else { return XCTFail("\(error)") }
            XCTAssertEqual(timeout.pool, .postgres)
            XCTAssertEqual(timeout.size, 1)
            XCTAssertGreaterThanOrEqual(timeout.waitedSeconds, 0.19)
        }
        pool.giveBack(held)
        XCTAssertNoThrow(try pool.borrow())
    }

    /// The negative control of the double-borrow detector: a caller that gives one session back
    /// twice puts it twice on the free list, and the pool would lend it to two borrowers at once.
    func testASessionHeldByOneBorrowerIsRefusedToAnotherAndNamed() throws {
        let pool = postgresPool(size: 2, wait: 1)
        let (first, _) = try pool.borrow(by: "client 4")
        pool.giveBack(first)
        pool.giveBack(first)  // the bug: given back twice
        let (again, _) = try pool.borrow(by: "client 4")
        XCTAssertTrue(again === first)
        XCTAssertThrowsError(try pool.borrow(by: "client 9")) { error in
            let twice = error as? PoolDoubleBorrow
            XCTAssertEqual(twice?.pool, .postgres)
            XCTAssertEqual(twice?.session, 1)
            XCTAssertEqual(twice?.holder, "client 4")
            XCTAssertEqual(twice?.borrower, "client 9")
            XCTAssertEqual(
                String(describing: error), "connection pool handed postgres session 1 to two borrowers: client 4 and client 9")
        }
        XCTAssertEqual(pool.doubleBorrows.count, 1)
        XCTAssertEqual(pool.doubleBorrows.first?.borrower, "client 9")
        // Without the bug, sessions lent and given back one at a time are never counted.
        let clean = postgresPool(size: 2, wait: 1)
        let (a, _) = try clean.borrow(by: "client 1")
        let (b, _) = try clean.borrow(by: "client 2")
        XCTAssertFalse(a === b)
        clean.giveBack(a)
        clean.giveBack(b)
        _ = try clean.borrow(by: "client 3")
        XCTAssertEqual(clean.doubleBorrows.count, 0)
        XCTAssertNil(clean.doubleBorrows.first)
    }
}

private final class LockedSet: Sendable {
    private let stored = Mutex(Set<Int>())
    func insert(_ value: Int) { stored.withLock { _ = $0.insert(value) } }
    var values: Set<Int> { stored.withLock { $0 } }
}
