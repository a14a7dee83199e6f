import Foundation
import LockProofCommerce
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// A target's reset, seed and state on a scratch database of its own (created here, dropped after):
/// the seed binds the scenario's values, and a checker judges the target's tables through
/// `TargetState` — a lost update is caught, and an unmapped ledger leaves only the ledger checks out.
final class TargetStateTests: XCTestCase {
    private let scratch = "lockproof_target_state"

    private func target(ledger: Bool) throws -> Target {
        try TargetParser.parse(
            """
            name: accounts
            instances: {base_urls: ["http://127.0.0.1:1"]}
            database: {url_env: ACCOUNTS_DATABASE_URL}
            http: {connect_timeout: 1s, request_timeout: 1s}
            operations:
              charge:
                request: {method: POST, path: "/accounts/{user}/charges", body: {cents: "{amount}"}}
                responses:
                  - {status: 200, outcome: ok, result: {balance: $.cents, applied: 1}}
            reset: ["TRUNCATE acct, acct_log"]
            seed:
              users: INSERT INTO acct (id, cents) VALUES (:id, :balance)
            state:
              balances: SELECT id AS "user", cents AS balance FROM acct
            \(ledger ? #"  balance_ledger: SELECT id AS "user", delta, 'charge' AS reason, ref AS reference FROM acct_log"# : "")
            """, file: "accounts.yaml")
    }

    private func withScratchDatabase(_ body: (PostgresConnection) throws -> Void) throws {
        let admin = try PostgresConnection(TestServers.configuration.databaseURL)
        _ = try admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)")
        _ = try admin.execute("CREATE DATABASE \(scratch)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)") }
        let db = try PostgresConnection(try TestServers.withDatabase(TestServers.configuration.databaseURL, scratch))
        _ = try db.execute("CREATE TABLE acct (id bigint PRIMARY KEY, cents bigint NOT NULL)")
        _ = try db.execute("CREATE TABLE acct_log (id bigint NOT NULL, delta bigint NOT NULL, ref text)")
        try body(db)
    }

    private let scenario = { try ScenarioParser.parse(
        "name: accounts-charge\ncase: charge-balance\nstrategy: seed\nseed: {users: 2, balance: 100}\nworkload: {virtual_users: 1, iterations: 1}\n",
        file: "accounts-charge.yaml") }

    private func charge(_ index: Int, user: Int, amount: Int) -> HistoryEntry {
        HistoryEntry(
            client: 0, index: index, operation: .charge, arguments: ["user": user, "amount": amount], items: nil,
            start: Double(index), end: Double(index) + 0.5, outcome: .ok, reason: nil, result: ["balance": 0, "applied": 1], key: nil)
    }

    /// The money checker's violations on the target's tables after two acknowledged charges of 50 to user 1.
    private func violations(_ target: Target, _ db: PostgresConnection, _ initial: InitialState) throws -> [String] {
        let checker = MoneyConservationChecker()
        checker.observe(charge(1, user: 1, amount: 50))
        checker.observe(charge(2, user: 1, amount: 50))
        let context = CheckContext(
            scenario: try scenario(), initial: initial, db: db, statistics: RunStatistics(),
            state: TargetState(target: target, db: db, initial: initial))
        return try checker.check(context).violations.map(\.name)
    }

    func testResetAndSeedRunTheTargetsStatementsWithBoundValues() throws {
        let target = try target(ledger: true)
        try withScratchDatabase { db in
            _ = try db.execute("INSERT INTO acct VALUES (99, 5)")  // a previous run's row: reset empties it
            let initial = try target.resetAndSeed(try scenario(), db: db)
            XCTAssertEqual(initial.users, [1, 2])
            XCTAssertEqual(try db.pairs("SELECT id, cents FROM acct"), [1: 100, 2: 100])
        }
    }

    func testALostUpdateIsCaughtThroughTheTargetsState() throws {
        let target = try target(ledger: true)
        try withScratchDatabase { db in
            let initial = try target.resetAndSeed(try scenario(), db: db)
            _ = try db.execute("INSERT INTO acct_log VALUES (1, 50, NULL), (1, 50, NULL)")
            _ = try db.execute("UPDATE acct SET cents = 200 WHERE id = 1")
            XCTAssertEqual(try violations(target, db, initial), [], "the correct state passes (openings are the seed's)")
            // Negative control: the second charge overwrote the first (a lost update).
            _ = try db.execute("UPDATE acct SET cents = 150 WHERE id = 1")
            XCTAssertEqual(try violations(target, db, initial), ["balance-below-acknowledged", "ledger-mismatch"])
        }
    }

    func testAnUnmappedLedgerLeavesOnlyTheLedgerChecksOut() throws {
        let target = try target(ledger: false)
        try withScratchDatabase { db in
            let initial = try target.resetAndSeed(try scenario(), db: db)
            _ = try db.execute("UPDATE acct SET cents = 150 WHERE id = 1")
            XCTAssertEqual(try violations(target, db, initial), ["balance-below-acknowledged"])
        }
    }
}
