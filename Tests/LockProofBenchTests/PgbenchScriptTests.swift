import Foundation
import LockProofCommerce
import LockProofScenario
import LockProofTestSupport
import XCTest

@testable import LockProofBench
@testable import LockProofPostgres

/// The pgbench ceiling runs exactly what the core sends: scripts are derived from traced
/// statements, and a script that drifted from them is caught.
final class PgbenchScriptTests: XCTestCase {
    private func trace(_ sql: String, _ parameters: [String?], columns: [String] = [], row: [String?] = [], rows: Int = 0)
        -> PostgresStatementTrace
    {
        PostgresStatementTrace(
            sql: sql, parameters: parameters, columns: columns, firstRow: row, rowCount: rows,
            simpleProtocol: parameters.isEmpty && !sql.hasPrefix("SELECT"))
    }

    private var optimisticCharge: [PostgresStatementTrace] {
        [
            trace("BEGIN ISOLATION LEVEL READ COMMITTED", []),
            trace("SELECT balance, version FROM users WHERE id = $1", ["4821"], columns: ["balance", "version"], row: ["999999937", "0"], rows: 1),
            trace("UPDATE users SET balance = $1, version = version + 1\n WHERE id = $2 AND version = $3", ["1000000038", "4821", "0"]),
            trace("INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'charge', $3)", ["4821", "101", "charge"]),
            trace("COMMIT", []),
        ]
    }

    func testParametersMapToInputsResultColumnsAndArithmetic() throws {
        let picks = PgbenchPicks(expressions: ["user": "random(1, 10000)", "amount": "101"])
        let script = try PgbenchScript.derive(from: optimisticCharge, inputs: ["user": 4821, "amount": 101], picks: picks)
        let lines = script.text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("\\set user random(1, 10000)"), script.text)
        XCTAssertTrue(lines.contains("SELECT balance, version FROM users WHERE id = :user;"), script.text)
        XCTAssertTrue(lines.contains("\\gset r2_"), script.text)
        XCTAssertTrue(lines.contains("\\set e1 :r2_balance + :amount"), script.text)
        XCTAssertTrue(
            lines.contains("UPDATE users SET balance = :e1, version = version + 1 WHERE id = :user AND version = :r2_version;"),
            script.text)
        XCTAssertEqual(script.definitions, ["k1": "charge"])
        XCTAssertEqual(PgbenchScript.differences(script: script.text, trace: optimisticCharge), [])
    }

    /// Order 17 belongs to user 17: the column a parameter meets decides which one it is.
    func testEqualValuesAreToldApartByTheirColumn() throws {
        let traced = [
            trace("BEGIN", []),
            trace("SELECT user_id, total_amount FROM orders WHERE id = $1 FOR UPDATE", ["17"], columns: ["user_id", "total_amount"], row: ["17", "26"], rows: 1),
            trace("SELECT balance FROM users WHERE id = $1 FOR UPDATE", ["17"]),
            trace("UPDATE users SET balance = balance - $1 WHERE id = $2", ["26", "17"]),
            trace("INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, $2, 'payment', $3)", ["17", "-26", "order:17"]),
            trace("UPDATE orders SET status = 'PAYING' WHERE id = $1", ["17"]),
            trace("COMMIT", []),
        ]
        let script = try PgbenchScript.derive(
            from: traced, inputs: ["order": 17], picks: PgbenchPicks(expressions: ["order": "random(1, 100)"]))
        let lines = script.text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("SELECT user_id, total_amount FROM orders WHERE id = :order FOR UPDATE;"), script.text)
        XCTAssertTrue(lines.contains("SELECT balance FROM users WHERE id = :r2_user_id FOR UPDATE;"), script.text)
        XCTAssertTrue(lines.contains("UPDATE users SET balance = balance - :r2_total_amount WHERE id = :r2_user_id;"), script.text)
        XCTAssertTrue(lines.contains("\\set e1 0 - :r2_total_amount"), script.text)
        XCTAssertTrue(lines.contains("UPDATE orders SET status = 'PAYING' WHERE id = :order;"), script.text)
    }

    func testADriftedScriptIsCaught() throws {
        let picks = PgbenchPicks(expressions: ["user": "1", "amount": "101"])
        let script = try PgbenchScript.derive(from: optimisticCharge, inputs: ["user": 4821, "amount": 101], picks: picks)
        // Negative control: the ledger insert left out, as a hand-written script might.
        let withoutLedger = script.text.split(separator: "\n").filter { !$0.hasPrefix("INSERT") }.joined(separator: "\n")
        XCTAssertFalse(PgbenchScript.differences(script: withoutLedger, trace: optimisticCharge).isEmpty)
        let edited = script.text.replacingOccurrences(of: "version = version + 1", with: "version = version + 2")
        XCTAssertFalse(PgbenchScript.differences(script: edited, trace: optimisticCharge).isEmpty)
    }

    func testNullParameterIsRefused() {
        let traced = [trace("UPDATE users SET name = $1 WHERE id = $2", [nil, "7"])]
        XCTAssertThrowsError(try PgbenchScript.derive(from: traced, inputs: ["user": 7], picks: PgbenchPicks(expressions: ["user": "1"])))
    }

    func testPgbenchSummaryIsRead() throws {
        let output = """
            transaction type: ceiling.sql
            number of clients: 4
            number of transactions actually processed: 4000/4000
            number of failed transactions: 0 (0.000%)
            latency average = 1.234 ms
            initial connection time = 5.1 ms
            tps = 3241.5 (without initial connection time)
            """
        let result = try parsePgbenchOutput(output)
        XCTAssertEqual(result.tps, 3241.5)
        XCTAssertEqual(result.transactions, 4000)
        XCTAssertEqual(result.latencyAverageMilliseconds, 1.234)
        XCTAssertThrowsError(try parsePgbenchOutput("pgbench: error: connection refused"))
    }

    /// Every strategy of every case: trace one real operation, derive its script per contention,
    /// check it against the trace, and run it through pgbench on the same seed without a failed
    /// transaction.
    func testEveryStrategyScriptMatchesTheCoreAndRunsInPgbench() throws {
        guard let pgbench = findTool("pgbench") else { return XCTFail("pgbench is missing: run scripts/install-deps.sh") }
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        var preset = BenchPreset(
            name: "test", clientCounts: [2], repetitions: 1, cellSeconds: 1, ceilingRepetitions: 1, seconds: 0.3,
            negativeControls: true, pooledClients: [], poolSessions: 2)
        preset.paymentOrdersPerSecond = 200
        preset.stateOrdersPerSecond = 200
        let db = try TestServers.database()
        for benchCase in BenchCase.all {
            for strategy in benchCase.strategies {
                let name = "\(benchCase.caseName.rawValue)/\(strategy)"
                let traced = try traceOperation(benchCase: benchCase, strategy: strategy, preset: preset, runner: runner)
                XCTAssertGreaterThan(traced.statements.count, 2, name)
                XCTAssertTrue(traced.statements.contains { $0.sql.hasPrefix("BEGIN") }, "\(name) has no transaction")
                for contention in benchCase.contentions {
                    let cell = try benchCase.scenario(strategy: strategy, clients: 2, contention: contention, preset: preset)
                    let script = try traced.script(caseName: benchCase.caseName, strategy: strategy, picksFrom: cell)
                    _ = try runner.resetAndSeed(cell, db: db)
                    let result = try runPgbench(
                        pgbench, script: script, clients: 2, length: .transactionsPerClient(5),
                        databaseURL: TestServers.configuration.databaseURL, directory: NSTemporaryDirectory())
                    XCTAssertEqual(result.transactions, 10, "\(name)/\(contention)")
                    XCTAssertEqual(result.failedTransactions, 0, "\(name)/\(contention)")
                }
            }
        }
    }
}
