import Foundation
import LockProofPostgres
import LockProofScenario
import LockProofTestSupport
import XCTest

/// A target's SQL checked against a real database before a run: the README's worked example on a
/// scratch database of its own (created here, dropped after), and what the parser cannot see.
final class TargetDatabaseCheckTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private let scratch = "lockproof_target_check"

    private func example() throws -> String {
        let readme = try String(contentsOf: repository.appendingPathComponent("targets/README.md"), encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```yaml\n"))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        return String(readme[start.upperBound..<end.lowerBound])
    }

    private func withScratchDatabase(_ body: (PostgresConnection) throws -> Void) throws {
        let admin = try PostgresConnection(TestServers.configuration.databaseURL)
        _ = try admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)")
        _ = try admin.execute("CREATE DATABASE \(scratch)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)") }
        let db = try PostgresConnection(try TestServers.withDatabase(TestServers.configuration.databaseURL, scratch))
        _ = try db.execute("CREATE TABLE wallet (owner_id bigint PRIMARY KEY, amount_cents bigint NOT NULL)")
        _ = try db.execute("CREATE TABLE wallet_history (owner_id bigint NOT NULL, delta_cents bigint NOT NULL, request_key text)")
        try body(db)
    }

    func testTheWorkedExampleMatchesItsSchema() throws {
        let target = try TargetParser.parse(try example(), file: "wallet.yaml")
        try withScratchDatabase { db in
            XCTAssertEqual(target.checkDatabase(db), [])
            // Prepared, not run: nothing was inserted.
            XCTAssertEqual(try db.query("SELECT count(*) FROM wallet").int(0, 0), 0)
        }
    }

    func testWhatOnlyTheDatabaseKnowsIsReportedWithFileLineAndSection() throws {
        var text = try example()
        // The parser sees the word `balance` (in a comment); the database sees no such column.
        text = text.replacingOccurrences(
            of: #"SELECT owner_id AS "user", amount_cents AS balance FROM wallet"#,
            with: #"SELECT owner_id AS "user", amount_cents FROM wallet -- balance"#)
        text = text.replacingOccurrences(of: "INSERT INTO wallet (owner_id", with: "INSERT INTO wallets (owner_id")
        text = text.replacingOccurrences(of: "request_key AS reference", with: "request_id AS reference")
        let target = try TargetParser.parse(text, file: "wallet.yaml")
        try withScratchDatabase { db in
            let problems = target.checkDatabase(db)
            XCTAssertEqual(problems.count, 3, "\(problems)")
            XCTAssertTrue(
                problems.contains {
                    $0.hasPrefix("wallet.yaml:39: state.balances: the query returns the columns user, amount_cents; expected user, balance (missing balance)")
                }, "\(problems)")
            XCTAssertTrue(
                problems.contains { $0.hasPrefix("wallet.yaml:40: state.balance_ledger: the database refused the query:") && $0.contains("request_id") },
                "\(problems)")
            XCTAssertTrue(
                problems.contains { $0.hasPrefix("wallet.yaml:36: seed.users: the database refused the statement:") && $0.contains("wallets") },
                "\(problems)")
        }
    }
}
