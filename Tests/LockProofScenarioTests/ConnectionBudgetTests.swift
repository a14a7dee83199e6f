import Foundation
import LockProofCommerce
import LockProofScenario
import LockProofTestSupport
import XCTest

/// `workload.connections` as scenarios use it: pooled payments wait for a session under their Redis
/// lock, and the connections a run needs are compared with what the servers have left (the pool
/// itself is tested in LockProofCommerceTests/ConnectionPoolTests.swift).
final class ConnectionBudgetTests: XCTestCase {
    /// The seed takes the Redis lock before its transaction: with fewer sessions than lock holders,
    /// holders wait for a session, and that wait is part of the Redis lock's hold.
    func testPooledPaymentsWaitForASessionWhileHoldingTheirRedisLock() throws {
        let result = try runShippedScenario("process-payment-pool-lock-hold")
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        let report = ScenarioReport(result)
        let postgres = try XCTUnwrap(report.poolWaitSeconds.first { $0.pool == "postgres" })
        XCTAssertEqual(postgres.whileHoldingLock, 256, "every payment's deduction borrowed its session under the Redis lock")
        let held = try XCTUnwrap(result.statistics.trend("lockproof_lock_held_seconds", where: ["lock": "redis"]))
        XCTAssertLessThanOrEqual(postgres.whileHoldingLockSeconds, held.average * Double(held.count) + 0.001, "the waits are inside the holds")
    }

    func testTheConnectionBudgetIsComparedWithTheServer() throws {
        let db = try TestServers.database()
        let server = try ConnectionBudget.available(db)
        let tooMany = try ScenarioParser.parse(
            "name: big\ncase: charge-balance\nworkload: {virtual_users: \(min(server.available + 10, 1000)), iterations: 1}", file: "big.yaml")
        XCTAssertThrowsError(try ConnectionBudget.check([tooMany], db)) {
            XCTAssertTrue("\($0)".contains("big.yaml: scenario big needs"), "\($0)")
            XCTAssertTrue("\($0)".contains("max_connections \(server.max)"), "\($0)")
        }
        var pooled = tooMany
        pooled.workload.connections = ConnectionsSpec(postgres: 20, redis: 20)
        XCTAssertNoThrow(try ConnectionBudget.check([pooled], db))
    }

    func testTheRedisBudgetIsComparedWithMaxclients() throws {
        let db = try TestServers.database()
        let redis = try TestServers.redis()
        let original = try XCTUnwrap(ConnectionBudget.redisAvailable(redis), "the throwaway Redis answers CONFIG GET")
        // Room for 30 more connections: 60 users with one each cannot fit, a pool of 10 can.
        try redis.checked(["CONFIG", "SET", "maxclients", String(original.inUse + 30)])
        defer { _ = try? redis.checked(["CONFIG", "SET", "maxclients", String(original.max)]) }
        let server = try XCTUnwrap(ConnectionBudget.redisAvailable(redis))
        XCTAssertEqual(server.available, 30)
        let tooMany = try ScenarioParser.parse(
            "name: wide\ncase: charge-balance\nworkload: {virtual_users: 60, iterations: 1}", file: "wide.yaml")
        XCTAssertThrowsError(try ConnectionBudget.check([tooMany], db, redis: redis)) {
            XCTAssertTrue("\($0)".contains("wide.yaml: scenario wide needs 64 Redis connections"), "\($0)")
            XCTAssertTrue("\($0)".contains("maxclients \(server.max)"), "\($0)")
        }
        var pooled = tooMany
        pooled.workload.connections = ConnectionsSpec(postgres: 10, redis: 10)
        XCTAssertNoThrow(try ConnectionBudget.check([pooled], db, redis: redis))
    }
}
