import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofTestSupport
import XCTest
import Synchronization

/// A lock holder stalls past its lease (a GC-pause stand-in) and then goes on writing, while a
/// second client takes the expired lock: Kleppmann's scenario on a real Redis and PostgreSQL.
final class FencingTests: CommerceTestCase {
    private static func shortLease() -> CommerceSettings {
        var settings = Self.settings(thinkSeconds: 0)
        settings.lock = DistributedLockOptions(leaseMilliseconds: 300, waitMilliseconds: 5_000, renewLease: false)
        return settings
    }

    /// When a stalled holder goes on.
    private enum Resume {
        /// After a fixed pause: for strategies under which B cannot finish while A stalls.
        case afterSeconds(Double)
        /// Once B's charge has returned (bounded): B's whole charge falls inside A's stall on a
        /// loaded machine too, so the interleaving under test is the one that happens.
        case whenBReturned
    }

    /// Client A charges 100 and stalls at `stall` (after it took the lock) past its lease; once A
    /// is stalled, client B charges 10. Returns both results, the final balance, and whether B had
    /// returned before A went on.
    private func pausedHolder(
        _ strategy: ChargeBalanceStrategy, stallInThink: Bool, resume: Resume = .afterSeconds(0.8), sink: RecordingEventSink
    ) throws -> (a: Result<ChargeResult, any Error>, b: Result<ChargeResult, any Error>, balance: Int, bReturnedDuringStall: Bool) {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let b = try TestServers.client(events: sink, settings: Self.shortLease())
        let stalled = DispatchSemaphore(value: 0)
        let bReturned = DispatchSemaphore(value: 0)
        let bReturnedDuringStall = OnceFlag()
        let once = OnceFlag()
        let stall: @Sendable () -> Void = {
            guard once.first() else { return }
            stalled.signal()
            switch resume {
            case .afterSeconds(let seconds):
                Thread.sleep(forTimeInterval: seconds)
            case .whenBReturned:
                // Bounded: a B that waits for A (a strategy that serialises them) must not hang.
                if bReturned.wait(timeout: .now() + 20) == .success { _ = bReturnedDuringStall.first() }
            }
        }
        let resultA = ResultSlot<ChargeResult>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            resultA.set(
                Result {
                    let a = try TestServers.client(events: sink, settings: Self.shortLease())
                    if stallInThink { a.faults.duringThink = stall } else { a.faults.whileHoldingLock = { _ in stall() } }
                    return try ChargeBalance(client: a, strategy: strategy).charge(userId: userId, amount: 100)
                })
        }
        thread.start()
        XCTAssertEqual(stalled.wait(timeout: .now() + 10), .success, "A never stalled")
        let resultB = Result { try ChargeBalance(client: b, strategy: strategy).charge(userId: userId, amount: 10) }
        bReturned.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "A hung")
        return (resultA.value!, resultB, try balance(userId), bReturnedDuringStall.taken)
    }

    func testRedisLockAloneLosesAnUpdateWhenItsHolderStallsPastTheLease() throws {
        let sink = RecordingEventSink()
        let (a, b, balance, bReturnedDuringStall) = try pausedHolder(
            .redisLock, stallInThink: true, resume: .whenBReturned, sink: sink)
        XCTAssertTrue(bReturnedDuringStall, "B took the lock A's expired lease freed and charged while A stalled: \(b)")
        XCTAssertNotNil(try? a.get(), "A's charge is acknowledged: \(a)")
        XCTAssertNotNil(try? b.get(), "B's charge is acknowledged: \(b)")
        XCTAssertEqual(balance, 100, "B's acknowledged 10 was overwritten: a lost update")
        XCTAssertEqual(try ledgerSum(userId: try scalar("SELECT min(id) FROM users")), 110, "both charges were acknowledged and recorded")
        XCTAssertGreaterThanOrEqual(sink.count { $0 == .distributedLockLost }, 1, "A found its lease gone at release")
    }

    func testFencingAndTheDatabaseLockKeepEveryUpdateWhenTheHolderStalls() throws {
        for strategy in [ChargeBalanceStrategy.redisLockFenced, .seed] {
            try TestServers.reset()
            let (a, b, balance, _) = try pausedHolder(strategy, stallInThink: true, sink: RecordingEventSink())
            XCTAssertNotNil(try? a.get(), "\(strategy): \(a)")
            XCTAssertNotNil(try? b.get(), "\(strategy): \(b)")
            XCTAssertEqual(balance, 110, "\(strategy): both acknowledged charges are in the balance")
        }
    }

    func testAStaleFencingTokenIsRefusedAndCounted() throws {
        let sink = RecordingEventSink()
        let (a, b, balance, bReturnedDuringStall) = try pausedHolder(
            .redisLockFenced, stallInThink: false, resume: .whenBReturned, sink: sink)
        XCTAssertTrue(bReturnedDuringStall, "B charged while A stalled before its transaction: \(b)")
        XCTAssertNotNil(try? b.get(), "B, the newer holder, wrote: \(b)")
        XCTAssertThrowsError(try a.get()) { XCTAssertTrue($0 is FencedWriteRefused, "\($0)") }
        XCTAssertEqual(balance, 10, "A's stale write never happened, and its failure was reported")
        XCTAssertEqual(sink.count { $0 == .fencedWriteRefused }, 1)
        XCTAssertEqual(try ledgerSum(userId: try scalar("SELECT min(id) FROM users")), 10)
    }

    /// A failover can lose the fencing counter's last increments: the new primary hands out tokens
    /// the database has already seen. The database refuses them (no damage, but failures) until the
    /// counter passes the last accepted token again.
    func testAFencingCounterThatWentBackwardsIsRefusedByTheDatabase() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let sink = RecordingEventSink()
        let client = try TestServers.client(events: sink, settings: Self.shortLease())
        let charge = ChargeBalance(client: client, strategy: .redisLockFenced)
        for _ in 0..<3 { _ = try charge.charge(userId: userId, amount: 1) }
        XCTAssertEqual(try scalar("SELECT fence_token FROM users WHERE id = $1", [userId]), 3)
        // What a failover before replication does to the counter.
        try TestServers.redis().checked(["DEL", "lockproof:fence:" + ChargeBalance.lockKey(userId: userId)])
        XCTAssertThrowsError(try charge.charge(userId: userId, amount: 1)) { XCTAssertTrue($0 is FencedWriteRefused) }
        XCTAssertThrowsError(try charge.charge(userId: userId, amount: 1)) { XCTAssertTrue($0 is FencedWriteRefused) }
        // Token 3 again: equal to the last accepted one, but another holding's: two holders must
        // never both write with one token.
        XCTAssertThrowsError(try charge.charge(userId: userId, amount: 1)) { XCTAssertTrue($0 is FencedWriteRefused) }
        XCTAssertNoThrow(try charge.charge(userId: userId, amount: 1), "token 4: newer than any accepted")
        XCTAssertEqual(try balance(userId), 4)
        XCTAssertEqual(sink.count { $0 == .fencedWriteRefused }, 3)
    }
}

final class OnceFlag: Sendable {
    private let wasTaken = Mutex(false)
    var taken: Bool { wasTaken.withLock { $0 } }
    func first() -> Bool {
        wasTaken.withLock { taken in
            if taken { return false }
            taken = true
            return true
        }
    }
}

final class ResultSlot<T: Sendable>: Sendable {
    private let stored = Mutex<Result<T, any Error>?>(nil)
    func set(_ value: Result<T, any Error>) { stored.withLock { $0 = value } }
    var value: Result<T, any Error>? { stored.withLock { $0 } }
}
