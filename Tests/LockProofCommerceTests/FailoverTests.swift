import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofRedis
import LockProofTestSupport
import XCTest

/// A Redis failover before replication, on real redis-server processes of the test's own (a
/// primary and its replica; the shared test Redis is not touched): the replica is promoted while a
/// client holds a lock on the primary, the primary crashes, and the clients move to the new one.
/// The lock is missing there, a second client takes it while the first still holds it, the
/// fencing counter is behind, and the database's fence check refuses the reissued tokens.
final class FailoverTests: CommerceTestCase {
    private var primary: ThrowawayRedis!
    private var replica: ThrowawayRedis!

    override func setUpWithError() throws {
        try super.setUpWithError()
        primary = try ThrowawayRedis(arguments: [])
        replica = try ThrowawayRedis(arguments: ["--replicaof", "127.0.0.1", String(primary.port)])
        let replicaConnection = try RedisConnection(endpoint: replica.endpoint, commandTimeout: 2)
        let deadline = Date(timeIntervalSinceNow: 20)
        while !(((try? replicaConnection.checked(["INFO", "replication"]))?.text ?? "").contains("master_link_status:up")) {
            guard Date() < deadline else { throw FailoverTestError("the replica did not synchronise within 20 s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    override func tearDown() {
        primary?.stop()
        replica?.stop()
        primary = nil
        replica = nil
        super.tearDown()
    }

    /// Waits (bounded) until the replica has the primary's value of `key`: what it holds when it is
    /// promoted is then known, not assumed.
    private func replicated(_ key: String, from primaryConnection: RedisConnection) throws {
        let value = try primaryConnection.checked(["GET", key]).text
        let replicaConnection = try RedisConnection(endpoint: replica.endpoint, commandTimeout: 2)
        let deadline = Date(timeIntervalSinceNow: 10)
        while try replicaConnection.checked(["GET", key]).text != value {
            guard Date() < deadline else { throw FailoverTestError("the replica did not receive \(key) = \(value ?? "nil") within 10 s") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// What a failover does when the replica lags: it stops following (promoted) while the primary
    /// still takes writes, then the primary crashes and `route` points the clients at the replica.
    private func promoteReplica() throws -> RedisConnection {
        let connection = try RedisConnection(endpoint: replica.endpoint, commandTimeout: 2)
        try connection.checked(["REPLICAOF", "NO", "ONE"])
        return connection
    }

    func testALockTakenBeforeReplicationIsLostAndASecondClientTakesItWhileTheFirstHoldsIt() throws {
        let key = ChargeBalance.lockKey(userId: 1)
        let fenceKey = "lockproof:fence:" + key
        let route = RedisRoute(primary.endpoint)
        let holders = LockHolderRegistry()
        let sink = RecordingEventSink()
        let probe = Probe(caseName: "charge-balance", sink: sink)
        let options = DistributedLockOptions(leaseMilliseconds: 30_000, waitMilliseconds: 2_000, renewLease: false)
        let primaryConnection = try RedisConnection(endpoint: primary.endpoint, commandTimeout: 2)
        let lockClient: @Sendable () throws -> DistributedLockClient = {
            DistributedLockClient(
                redis: try RedisConnection(endpoint: route.primary.endpoint, commandTimeout: 2), route: route, holders: holders)
        }
        let a = try lockClient()

        // Before the failover: a holding that reached the replica.
        let replicatedHolding = try a.acquire(key, options: options, probe: probe)
        XCTAssertTrue(try a.release(replicatedHolding, probe: probe))
        try replicated(fenceKey, from: primaryConnection)

        let newPrimary = try promoteReplica()
        // Replication is held back from here: A's lock and its token exist only on the old primary.
        let held = try a.acquire(key, options: options, probe: probe)
        XCTAssertEqual(held.fencingToken, replicatedHolding.fencingToken + 1)
        XCTAssertEqual(try primaryConnection.checked(["GET", key]).text, held.token)
        primary.crash()
        route.switchTo(replica.endpoint)

        XCTAssertNil(try newPrimary.checked(["GET", key]).text, "the lock A holds is missing on the new primary")
        let counterAfter = try XCTUnwrap(Int64(try newPrimary.checked(["GET", fenceKey]).text ?? ""))
        XCTAssertLessThan(counterAfter, held.fencingToken, "the fencing counter went backwards")

        // A still works under its lock while B, started at the same barrier, takes the same key.
        let bAcquired = DispatchSemaphore(value: 0)
        let results = try runConcurrently(clients: 2, timeout: 30, setup: { _ in try lockClient() }) {
            index, locks -> (releasedByA: Bool?, takenByB: LockHandle?) in
            if index == 0 {
                // A finishes its work only once B holds the lock too (bounded: a hang fails).
                guard bAcquired.wait(timeout: .now() + 10) == .success else { throw FailoverTestError("B did not take the lock within 10 s") }
                return (try locks.release(held, probe: probe), nil)
            }
            let second = try locks.acquire(key, options: options, probe: probe)
            bAcquired.signal()
            return (nil, second)
        }
        XCTAssertEqual(try results[0].get().releasedByA, false, "A's release finds another holder's lock: A had lost it")
        let second = try XCTUnwrap(try results[1].get().takenByB, "B took the lock on the new primary")
        XCTAssertEqual(holders.overlaps, 1, "two holders of one lock")
        XCTAssertEqual(holders.maxHolders, 2)
        XCTAssertEqual(holders.firstOverlappingKey, key)
        XCTAssertLessThanOrEqual(second.fencingToken, held.fencingToken, "B's token is not newer than A's: the new primary reissued it")
        XCTAssertEqual(sink.count { $0 == .distributedLockLost }, 1)
        XCTAssertTrue(try lockClient().release(second, probe: probe), "B's lock is B's on the new primary")
    }

    /// The same failover under `redis-lock-fenced` charges: the new primary's tokens are behind the
    /// one the database accepted during the lag, so the database refuses them until the counter
    /// catches up; nothing acknowledged is lost.
    func testTheDatabaseFenceCheckRefusesTokensTheNewPrimaryReissues() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        var configuration = TestServers.configuration
        configuration.redis = primary.endpoint
        let shared = try SharedServices(configuration: configuration)
        defer { shared.stop() }
        let sink = RecordingEventSink()
        var settings = Self.settings(thinkSeconds: 0)
        settings.lock = DistributedLockOptions(leaseMilliseconds: 30_000, waitMilliseconds: 2_000, renewLease: false)
        let client = try CommerceClient(configuration: configuration, shared: shared, events: sink, settings: settings)
        let charge = ChargeBalance(client: client, strategy: .redisLockFenced)
        let primaryConnection = try RedisConnection(endpoint: primary.endpoint, commandTimeout: 2)
        let fenceKey = "lockproof:fence:" + ChargeBalance.lockKey(userId: userId)

        for _ in 0..<2 { _ = try charge.charge(userId: userId, amount: 1) }
        try replicated(fenceKey, from: primaryConnection)
        let newPrimary = try promoteReplica()
        // During the lag: two more charges the replica never sees; the database accepts token 4.
        for _ in 0..<2 { _ = try charge.charge(userId: userId, amount: 1) }
        XCTAssertEqual(try scalar("SELECT fence_token FROM users WHERE id = $1", [userId]), 4)
        primary.crash()
        shared.route.switchTo(replica.endpoint)
        XCTAssertEqual(try newPrimary.checked(["GET", fenceKey]).text, "2", "the counter lost the lag's increments")

        XCTAssertThrowsError(try charge.charge(userId: userId, amount: 1), "token 3 from the new primary") {
            XCTAssertTrue($0 is FencedWriteRefused, "\($0)")
        }
        XCTAssertThrowsError(try charge.charge(userId: userId, amount: 1), "token 4 again, reissued to another holding") {
            XCTAssertTrue($0 is FencedWriteRefused, "\($0)")
        }
        XCTAssertNoThrow(try charge.charge(userId: userId, amount: 1), "token 5: the counter has caught up")
        XCTAssertEqual(sink.count { $0 == .fencedWriteRefused }, 2)
        XCTAssertEqual(try balance(userId), 5, "every acknowledged charge is in the balance, the refused ones are not")
        XCTAssertEqual(try scalar("SELECT fence_token FROM users WHERE id = $1", [userId]), 5)
    }
}

struct FailoverTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
