import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofMetrics
import LockProofPostgres
import LockProofScenario
import LockProofService
import LockProofTestSupport
import XCTest

/// targets/lockproof-serve.yaml describes serve truthfully: its reset, seed and state SQL run on
/// LockProof's own schema (checked by `Target.checkDatabase`, then run), and its requests, rendered
/// and interpreted by the target's own code against a running API service, get the outcomes and
/// results the file maps them to; the state queries then read what the operations did.
final class ServeTargetTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testTheServeTargetDrivesServeAndReadsItsState() throws {
        try TestServers.reset()
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/lockproof-serve.yaml").path)
        let db = try TestServers.database()
        XCTAssertEqual(target.checkDatabase(db), [], "the file's SQL against LockProof's schema")

        // Rows left from another test are emptied by the file's reset.
        _ = try SeedData(db: db).users(count: 2, balance: 5)
        func run(_ statement: TargetStatement, _ values: [String: Int] = [:]) throws {
            let bound: [any PostgresBindable] = statement.parameters.map { values[$0]! }
            try db.query(statement.sql, bound)
        }
        for statement in target.reset { try run(statement) }
        let rows: [(Target.SeedKind, [[String: Int]])] = [
            (.users, [1, 2, 3].map { ["id": $0, "balance": 1_000] }),
            (.products, [1, 2].map { ["id": $0, "price": 1_000, "stock": 10] }),
            (.coupons, [["id": 1, "quantity": 5]]),
            (.orders, [1, 2].map { ["id": $0, "user": 1, "total": 1_000] }),
            (.orderItems, [1, 2].map { ["order": $0, "product": 1, "quantity": 1, "price": 1_000] }),
            (.cartLines, [["user": 1, "product": 1, "quantity": 1]]),
            (.spendingLimits, [1, 2].map { ["user": $0, "daily_limit": 1_000] }),
        ]
        for (kind, values) in rows {
            for statement in target.seed[kind] ?? [] {
                for value in values { try run(statement, value) }
            }
        }
        for statement in target.seedAfter { try run(statement) }

        var options = APIService.Options()
        options.workers = 4
        options.connections = 4
        options.redisConnections = 4
        let service = APIService(
            options: options, configuration: TestServers.configuration, shared: TestServers.shared, metrics: LockProofMetrics(),
            gateway: AlwaysApprovingGateway())
        let server = service.makeServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
        try server.start()
        defer {
            server.stop()
            service.close()
        }
        let port = try XCTUnwrap(server.boundPort)

        func perform(_ operation: String, _ arguments: [String: TargetValue], items: [(product: Int, quantity: Int)] = []) throws -> String {
            let request = try XCTUnwrap(target.request(operation, arguments: arguments, items: items))
            let response = try BlockingHTTPClient.request(
                method: request.method, port: port, path: request.path,
                headers: request.headers.map { HTTPHeader(name: $0.0, value: $0.1) }, body: Array(request.body ?? Data()),
                timeoutSeconds: 30)
            let seen = try XCTUnwrap(target.operations[operation]).interpret(status: response.status, body: Data(response.body))
            let result = (seen.result ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return "\(seen.outcome.rawValue) \(seen.reason ?? "-") \(result)"
        }

        XCTAssertEqual(try perform("charge", ["user": .integer(1), "amount": .integer(500)]), "ok - applied=1,attempts=1,balance=1500")
        let keyed: [String: TargetValue] = ["user": .integer(1), "amount": .integer(300), "key": .text("k-1")]
        XCTAssertEqual(try perform("charge", keyed), "ok - applied=1,attempts=1,balance=1800")
        XCTAssertEqual(try perform("charge", keyed), "ok - applied=0,balance=1800", "a repeated key is applied once")
        XCTAssertEqual(try perform("charge", ["user": .integer(99), "amount": .integer(1)]), "fail not_found ")
        XCTAssertEqual(try perform("issue", ["user": .integer(1), "coupon": .integer(1)]), "ok - issued_quantity=1")
        XCTAssertEqual(try perform("issue", ["user": .integer(1), "coupon": .integer(1)]), "fail already_issued ")
        XCTAssertEqual(
            try perform("create", ["user": .integer(2)], items: [(2, 1), (1, 1)]), "ok - order=3,total=2000",
            "the seed's `after` moved the orders' sequence past the seeded ids")
        XCTAssertEqual(try perform("create", ["user": .integer(2)], items: [(1, 11)]), "fail insufficient_stock ")
        XCTAssertEqual(try perform("pay", ["order": .integer(1)]), "ok - amount=1000,user=1")
        XCTAssertEqual(try perform("pay", ["order": .integer(1)]), "fail order_not_payable ")
        XCTAssertEqual(try perform("complete", ["order": .integer(1)]), "ok - ")
        XCTAssertEqual(try perform("cancel", ["order": .integer(2)]), "ok - ")
        XCTAssertEqual(try perform("cancel", ["order": .integer(1)]), "fail invalid_transition ")
        XCTAssertEqual(try perform("add", ["user": .integer(1), "product": .integer(1), "quantity": .integer(2)]), "ok - quantity=3")
        XCTAssertEqual(try perform("pay", ["order": .integer(42)]), "fail not_found ")
        XCTAssertEqual(try perform("spend", ["user": .integer(1), "amount": .integer(600)]), "ok - spent_today=600")
        XCTAssertEqual(try perform("spend", ["user": .integer(1), "amount": .integer(400)]), "ok - spent_today=1000")
        XCTAssertEqual(try perform("spend", ["user": .integer(1), "amount": .integer(1)]), "fail daily_limit_exceeded ")
        XCTAssertEqual(try perform("spend", ["user": .integer(3), "amount": .integer(1)]), "fail not_found ", "user 3 has no limit")

        /// A state query's rows, each as its columns in the kind's order, sorted.
        func state(_ kind: Target.StateKind) throws -> [String] {
            let statement = try XCTUnwrap(target.state[kind])
            let result = try db.query(statement.sql)
            let names = (0..<result.columnCount).map(result.columnName)
            let columns = kind.columns.map { names.firstIndex(of: $0)! }
            return (0..<result.rowCount).map { row in columns.map { result.string(row, $0) ?? "null" }.joined(separator: " ") }.sorted()
        }
        XCTAssertEqual(try state(.balances), ["1 800", "2 1000", "3 1000"])
        let ledger = try state(.balanceLedger)
        XCTAssertEqual(ledger.count, 3, "the run's movements, not the opening rows: \(ledger)")
        XCTAssertTrue(ledger.contains("1 300 charge k-1"), "\(ledger)")
        XCTAssertTrue(ledger.contains("1 -1000 payment order:1"), "\(ledger)")
        XCTAssertTrue(ledger.contains { $0.hasPrefix("1 500 charge ledger:") }, "an unkeyed charge gets a reference of its own: \(ledger)")
        XCTAssertEqual(try state(.stock), ["1 9", "2 10"])
        XCTAssertEqual(try state(.stockLedger), ["1 -1 payment order:1"])
        XCTAssertEqual(try state(.orders), ["1 1 1000 COMPLETED", "2 1 1000 CANCELLED", "3 2 2000 PENDING"])
        XCTAssertEqual(try state(.orderItems), ["1 1 1", "2 1 1", "3 1 1", "3 2 1"])
        XCTAssertEqual(try state(.coupons), ["1 5 1"])
        XCTAssertEqual(try state(.couponIssues), ["1 1"])
        XCTAssertEqual(try state(.cartLines), ["1 1 3"])
        XCTAssertEqual(try state(.compensations), [])
        XCTAssertEqual(try state(.spendingLimits), ["1 1000", "2 1000"])
        let spends = try state(.spends).map { $0.split(separator: " ") }
        XCTAssertEqual(spends.map { "\($0[0]) \($0[2])" }, ["1 400", "1 600"])
        XCTAssertEqual(Set(spends.map { $0[1] }).count, 1, "both on one day")
        // The opening rows stay in LockProof's ledgers, where its in-process checkers read them.
        XCTAssertEqual(try db.query("SELECT count(*) FROM balance_ledger WHERE reason = 'opening'").int(0, 0), 3)
    }
}
