import LockProofCommerce
import LockProofLocking
import LockProofRedis
import LockProofTestSupport
import XCTest

final class ChargeBalanceTests: CommerceTestCase {
    /// Ten concurrent charges of 10,000 on one user.
    private func race(
        _ strategy: ChargeBalanceStrategy, clients: Int = 10, sink: RecordingEventSink = RecordingEventSink()
    ) throws -> (userId: Int, succeeded: Int, results: [Result<ChargeResult, any Error>]) {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let settings = Self.settings()
        let results = try runConcurrently(
            clients: clients, setup: { _ in try TestServers.client(events: sink, settings: settings) }
        ) { _, client in
            try ChargeBalance(client: client, strategy: strategy).charge(userId: userId, amount: 10_000)
        }
        return (userId, results.filter { $0.value != nil }.count, results)
    }

    func testLockingStrategiesKeepEveryAcknowledgedCharge() throws {
        for strategy in [ChargeBalanceStrategy.seed, .optimisticRetry, .pessimistic, .atomic] {
            try TestServers.reset()
            let (userId, succeeded, results) = try race(strategy)
            XCTAssertEqual(succeeded, 10, "\(strategy): every charge acknowledged: \(results.compactMap(\.error))")
            XCTAssertEqual(try balance(userId), 100_000, "\(strategy): final = initial + acknowledged charges")
            XCTAssertEqual(try ledgerSum(userId: userId), 100_000, "\(strategy): the ledger agrees")
        }
    }

    func testOptimisticRetryWithoutRedisLockRetries() throws {
        let sink = RecordingEventSink()
        let (userId, succeeded, _) = try race(.optimisticRetry, sink: sink)
        XCTAssertEqual(succeeded, 10)
        XCTAssertEqual(try balance(userId), 100_000)
        XCTAssertGreaterThan(sink.count { $0 == .retryAttempt }, 0, "ten racing optimistic charges must conflict")
        XCTAssertGreaterThan(sink.count { $0 == .optimisticConflict(entity: "user") }, 0)
    }

    func testSeedStrategyNeedsNoRetryBehindTheRedisLock() throws {
        let sink = RecordingEventSink()
        let (userId, _, _) = try race(.seed, sink: sink)
        XCTAssertEqual(try balance(userId), 100_000)
        XCTAssertEqual(sink.count { $0 == .retryAttempt }, 0, "the Redis lock serializes the charges")
        XCTAssertEqual(sink.count { if case .lockWaited(.redis, _) = $0 { return true } else { return false } }, 10)
    }

    func testNaiveReadModifyWriteIsCaughtLosingUpdates() throws {
        let (userId, succeeded, _) = try race(.naive)
        XCTAssertEqual(succeeded, 10, "the naive strategy acknowledges every charge…")
        XCTAssertLessThan(try balance(userId), 100_000, "…and loses some of them")
        XCTAssertNotEqual(try balance(userId), try ledgerSum(userId: userId), "balance and ledger disagree")
    }

    func testIdempotencyKeyAppliesARepeatedChargeOnce() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        // The bound controls apply a key once too, but credit more or less than its amount or misrecord
        // it; key-not-claimed applies it as often as it is sent.
        let strategies = ChargeBalanceStrategy.allCases.filter {
            ![.naive, .reappliedCharge, .feeSkimmed, .ledgerRecordsBalance, .keyNotClaimed].contains($0)
        }
        for strategy in strategies {
            let key = "charge-\(strategy.rawValue)"
            let results = try runConcurrently(clients: 5, setup: { _ in try TestServers.client() }) { _, client in
                try ChargeBalance(client: client, strategy: strategy).charge(userId: userId, amount: 500, idempotencyKey: key)
            }
            let outcomes = results.compactMap(\.value)
            XCTAssertEqual(outcomes.count, 5, "\(strategy): \(results)")
            XCTAssertEqual(outcomes.filter(\.applied).count, 1, "\(strategy): applied exactly once")
        }
        XCTAssertEqual(try balance(userId), 500 * strategies.count)
        XCTAssertEqual(try ledgerSum(userId: userId), 500 * strategies.count)
    }

    func testBadInputIsATypedErrorAndWritesNothing() throws {
        let userId = try seed.users(count: 1, balance: 70)[0]
        let client = try TestServers.client()
        for strategy in ChargeBalanceStrategy.allCases {
            let charge = ChargeBalance(client: client, strategy: strategy)
            XCTAssertThrowsError(try charge.charge(userId: userId, amount: 0)) { XCTAssertEqual($0 as? DomainError, .invalidAmount(0)) }
            XCTAssertThrowsError(try charge.charge(userId: userId, amount: -5)) { XCTAssertEqual($0 as? DomainError, .invalidAmount(-5)) }
            XCTAssertThrowsError(try charge.charge(userId: 9_999, amount: 5, idempotencyKey: "k-\(strategy)")) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "user", id: 9_999), "\(strategy)")
            }
        }
        XCTAssertEqual(try balance(userId), 70)
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger"), 1, "only the opening entry")
        XCTAssertEqual(try scalar("SELECT count(*) FROM idempotency_keys"), 0)
    }
}

/// Pooled clients (as `serve` runs them) whose Redis connections cannot be opened: Redis is down
/// and the pool has none left. The borrow's failure counts as a failed acquire: with the circuit
/// breaker, the seed runs on its database locks alone and loses nothing (it used to throw, and
/// serve answered 503 to every request for as long as Redis was down); without one, it is refused.
extension ChargeBalanceTests {
    private func pooledRace(shared: SharedServices?, sink: RecordingEventSink) throws -> (userId: Int, results: [Result<ChargeResult, any Error>]) {
        let unreachable = {
            var configuration = TestServers.configuration
            configuration.redis.port = 1  // nothing listens: every connection attempt is refused
            return configuration
        }()
        let pools = ClientPools(configuration: unreachable, settings: Self.settings(), postgres: 4, redis: 4, waitSeconds: 5)
        addTeardownBlock { pools.close() }
        let userId = try seed.users(count: 1, balance: 0)[0]
        let settings = Self.settings()
        let results = try runConcurrently(
            clients: 8,
            setup: { _ in try CommerceClient(configuration: unreachable, shared: shared, events: sink, settings: settings, pools: pools) }
        ) { _, client in
            try ChargeBalance(client: client, strategy: .seed).charge(userId: userId, amount: 100)
        }
        return (userId, results)
    }

    func testPooledSeedChargesFallBackToDatabaseLocksWhenNoRedisConnectionOpens() throws {
        let services = try SharedServices(configuration: TestServers.configuration, breaker: CircuitBreakerOptions(failureThreshold: 3, coolDownSeconds: 600))
        defer { services.stop() }
        let sink = RecordingEventSink()
        let (userId, results) = try pooledRace(shared: services, sink: sink)
        XCTAssertEqual(results.compactMap(\.value).count, 8, "\(results.compactMap(\.error))")
        XCTAssertEqual(try balance(userId), 800)
        XCTAssertEqual(try ledgerSum(userId: userId), 800)
        XCTAssertGreaterThanOrEqual(sink.count { $0 == .redisLockBypassed }, 8, "every charge (and each of its retries) ran without the Redis lock")
        XCTAssertEqual(services.breaker.permission().0, .bypass, "the refused connections opened the breaker")
    }

    /// The control: without a breaker there is no fallback; the failure reaches the caller and nothing is written.
    func testPooledChargesWithoutABreakerAreRefusedWhenNoRedisConnectionOpens() throws {
        let (userId, results) = try pooledRace(shared: nil, sink: RecordingEventSink())
        XCTAssertEqual(results.compactMap(\.value).count, 0)
        XCTAssertTrue(results.compactMap(\.error).allSatisfy { $0 is RedisError }, "\(results.compactMap(\.error).prefix(2))")
        XCTAssertEqual(try balance(userId), 0)
    }
}
