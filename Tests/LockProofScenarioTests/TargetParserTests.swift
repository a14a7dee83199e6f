import Foundation
import LockProofScenario
import XCTest

/// The target file format (targets/README.md): the shipped targets parse, requests render from
/// an operation's arguments, responses map to the history, and every mistake is reported at its
/// line and column with what was expected.
final class TargetParserTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A small valid target; tests replace one line of it.
    private let valid = """
        name: mini
        instances:
          base_urls: ["${MINI_URL}", http://127.0.0.1:8081/api]
        database:
          url_env: MINI_DATABASE_URL
        operations:
          charge:
            request:
              method: POST
              path: /users/{user}/charges
              headers: {Idempotency-Key: "{key}"}
              body: {amount: "{amount}", note: "charge of {amount}", fixed: 3}
            responses:
              - {status: 201, outcome: ok, result: {balance: $.balance, applied: 1}}
              - {status: 409, when: {$.code: DUPLICATE}, outcome: fail, reason: conflict}
        responses:
          - {status: 5xx, outcome: unknown, reason: server_error}
        reset: [TRUNCATE wallet]
        seed:
          users: INSERT INTO wallet (id, money) VALUES (:id, :balance)
        state:
          balances: SELECT id AS "user", money AS balance FROM wallet
        """

    private func problems(_ text: String) -> [String] {
        do {
            _ = try TargetParser.parse(text, file: "t.yaml")
            return []
        } catch let error as ScenarioValidationError {
            return error.problems.map { "\($0.line):\($0.column): \($0.message)" }
        } catch {
            return ["unexpected \(error)"]
        }
    }

    private func assertProblem(
        _ text: String, at position: String, contains fragment: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let found = problems(text)
        XCTAssertTrue(
            found.contains { $0.hasPrefix(position + ":") && $0.contains(fragment) },
            "expected a problem at \(position) containing '\(fragment)', got \(found)", file: file, line: line)
    }

    private func replacing(_ old: String, _ new: String) -> String {
        precondition(valid.contains(old), "the sample has no \(old)")
        return valid.replacingOccurrences(of: old, with: new)
    }

    // MARK: the shipped file

    func testShopTargetParsesWithEveryOperationOfTheScenarios() throws {
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/shop.yaml").path)
        XCTAssertEqual(target.name, "shop")
        // Every operation of the scenarios, the sixth case's `spend` included.
        XCTAssertEqual(Set(target.operations.keys), Set(Target.operationNames))
        XCTAssertEqual(target.databaseURLVariable, "SHOP_DATABASE_URL")
        XCTAssertEqual(target.connectTimeoutSeconds, 2)
        XCTAssertEqual(target.requestTimeoutSeconds, 10)
        XCTAssertEqual(Set(target.seed.keys), Set(Target.SeedKind.allCases))
        XCTAssertEqual(target.seedAfter.count, 1)
        // Shop keeps no stock movements and has no compensations: those are not checked.
        XCTAssertEqual(Set(Target.StateKind.allCases).subtracting(target.state.keys), [.stockLedger, .compensations])
        XCTAssertEqual(
            try target.resolvedBaseURLs(environment: ["SHOP_URL": "http://127.0.0.1:35510/"]), ["http://127.0.0.1:35510"])
        XCTAssertEqual(target.missingOperations(["charge", "refund"]), ["refund"])
    }

    func testLockProofServeTargetParsesWithEveryOperationSeedAndState() throws {
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/lockproof-serve.yaml").path)
        XCTAssertEqual(target.name, "lockproof-serve")
        XCTAssertEqual(Set(target.operations.keys), Set(Target.operationNames), "every operation, spend included")
        XCTAssertEqual(target.databaseURLVariable, "LOCKPROOF_SERVE_DATABASE_URL")
        XCTAssertEqual(Set(target.seed.keys), Set(Target.SeedKind.allCases))
        // LockProof keeps both ledgers and its compensations: every checker's input is mapped.
        XCTAssertEqual(Set(target.state.keys), Set(Target.StateKind.allCases))
        XCTAssertEqual(target.seedAfter.count, 4)
        XCTAssertEqual(target.reset.count, 1)
        // One variable, one instance or several.
        XCTAssertEqual(
            try target.resolvedBaseURLs(environment: ["LOCKPROOF_SERVE_URLS": "http://127.0.0.1:22510/"]), ["http://127.0.0.1:22510"])
        XCTAssertEqual(
            try target.resolvedBaseURLs(environment: ["LOCKPROOF_SERVE_URLS": " http://127.0.0.1:22510  http://127.0.0.1:22511\n"]),
            ["http://127.0.0.1:22510", "http://127.0.0.1:22511"])
        XCTAssertThrowsError(try target.resolvedBaseURLs(environment: [:])) {
            XCTAssertTrue("\($0)".contains("LOCKPROOF_SERVE_URLS is not set"), "\($0)")
        }
        XCTAssertThrowsError(try target.resolvedBaseURLs(environment: ["LOCKPROOF_SERVE_URLS": "http://127.0.0.1:1 ftp://x"])) {
            XCTAssertTrue("\($0)".contains("'ftp://x' is not an http:// URL"), "\($0)")
        }
        // Requests as serve's routes take them (api/openapi.yaml).
        let spend = try XCTUnwrap(target.request("spend", arguments: ["user": .integer(7), "amount": .integer(300)]))
        XCTAssertEqual(spend.method, "POST")
        XCTAssertEqual(spend.path, "/users/7/spends")
        XCTAssertEqual(spend.body.map { String(decoding: $0, as: UTF8.self) }, #"{"amount":300}"#)
        let pay = try XCTUnwrap(target.request("pay", arguments: ["order": .integer(5)]))
        XCTAssertEqual(pay.path, "/orders/5/payment")
        XCTAssertNil(pay.body, "serve's payment route refuses a body")
        let keyed = try XCTUnwrap(target.request("charge", arguments: ["user": .integer(1), "amount": .integer(5), "key": .text("k-1")]))
        XCTAssertTrue(keyed.headers.contains { $0.0 == "Idempotency-Key" && $0.1 == "k-1" })
        let unkeyed = try XCTUnwrap(target.request("charge", arguments: ["user": .integer(1), "amount": .integer(5)]))
        XCTAssertFalse(unkeyed.headers.contains { $0.0 == "Idempotency-Key" })
        // Problem documents map by their type.
        let spendRules = try XCTUnwrap(target.operations["spend"])
        let overLimit = spendRules.interpret(status: 409, body: Data(#"{"type":"/problems/daily-limit-exceeded","status":409}"#.utf8))
        XCTAssertEqual(overLimit.outcome, .fail)
        XCTAssertEqual(overLimit.reason, "daily_limit_exceeded")
        let conflict = spendRules.interpret(status: 409, body: Data(#"{"type":"/problems/conflict","status":409}"#.utf8))
        XCTAssertEqual(conflict.reason, "conflict")
        let lost = spendRules.interpret(status: 500, body: Data(#"{"type":"/problems/outcome-unknown","outcome":"unknown"}"#.utf8))
        XCTAssertEqual(lost.outcome, .unknown)
        let spent = spendRules.interpret(status: 201, body: Data(#"{"spend_id":3,"spent_today":700}"#.utf8))
        XCTAssertEqual(spent.outcome, .ok)
        XCTAssertEqual(spent.result, ["spent_today": 700])
    }

    func testTheReadmesWorkedExampleParses() throws {
        let readme = try String(contentsOf: repository.appendingPathComponent("targets/README.md"), encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```yaml\n"))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let target = try TargetParser.parse(String(readme[start.upperBound..<end.lowerBound]), file: "README.md")
        XCTAssertEqual(target.name, "wallet")
        XCTAssertEqual(Array(target.operations.keys), ["charge"])
        XCTAssertEqual(target.missingOperations(["charge", "pay"]), ["pay"])
        let request = target.operations["charge"]!.request(arguments: ["user": .integer(7), "amount": .integer(1000)])
        XCTAssertEqual(request.path, "/wallets/7/top-ups")
        XCTAssertEqual(String(decoding: request.body!, as: UTF8.self), #"{"cents":1000,"source":"lockproof"}"#)
        XCTAssertEqual(target.operations["charge"]!.interpret(status: 503, body: Data()).outcome, .unknown)
    }

    func testEveryOperationTheScenariosUseIsATargetOperation() throws {
        let scenarios = try FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent("Scenarios").path)
            .filter { $0.hasSuffix(".yaml") }
        XCTAssertFalse(scenarios.isEmpty)
        var used = Set<String>()
        for name in scenarios {
            let scenario = try ScenarioParser.load(path: repository.appendingPathComponent("Scenarios/\(name)").path)
            used.formUnion(scenario.operations.map(\.name))
        }
        XCTAssertEqual(used.subtracting(Target.operationNames), [])
    }

    func testShopRequestsRenderFromTheOperationsArguments() throws {
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/shop.yaml").path)
        let charge = target.operations["charge"]!
        let keyed = try XCTUnwrap(target.request("charge", arguments: ["user": .integer(7), "amount": .integer(1000), "key": .text("k-1")]))
        XCTAssertNil(target.request("refund", arguments: [:]))
        XCTAssertEqual(keyed.method, "POST")
        XCTAssertEqual(keyed.path, "/api/v2/point-charges")
        XCTAssertEqual(String(decoding: keyed.body!, as: UTF8.self), #"{"amount":1000,"memberId":7}"#)
        XCTAssertEqual(
            keyed.headers.map { "\($0.0): \($0.1)" },
            ["Accept: application/json", "Content-Type: application/json", "X-Request-Id: k-1"])
        // Without idempotency keys the header is left out, not sent empty.
        let plain = charge.request(arguments: ["user": .integer(7), "amount": .integer(1000)], commonHeaders: target.headers)
        XCTAssertFalse(plain.headers.contains { $0.0 == "X-Request-Id" })

        let create = target.operations["create"]!.request(
            arguments: ["user": .integer(3)], items: [(product: 2, quantity: 1), (product: 1, quantity: 4)])
        XCTAssertEqual(create.path, "/api/v2/purchases")
        XCTAssertEqual(
            String(decoding: create.body!, as: UTF8.self),
            #"{"lines":[{"itemId":2,"qty":1},{"itemId":1,"qty":4}],"memberId":3}"#)
        let add = target.operations["add"]!.request(arguments: ["user": .integer(3), "product": .integer(9), "quantity": .integer(2)])
        XCTAssertEqual(add.method, "PATCH")
        XCTAssertEqual(add.path, "/api/v2/members/3/basket/items/9")
        XCTAssertEqual(String(decoding: add.body!, as: UTF8.self), #"{"increase":2}"#)
    }

    func testShopResponsesMapToTheHistory() throws {
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/shop.yaml").path)
        func interpret(_ operation: String, _ status: Int, _ body: String) -> TargetInterpretation {
            target.operations[operation]!.interpret(status: status, body: Data(body.utf8))
        }
        let charged = interpret("charge", 201, #"{"result":"SUCCESS","data":{"point":1500,"replayed":false}}"#)
        XCTAssertEqual(charged.outcome, .ok)
        XCTAssertEqual(charged.result, ["balance": 1500, "applied": 1])
        XCTAssertEqual(interpret("charge", 200, #"{"data":{"point":1500,"replayed":true}}"#).result, ["balance": 1500, "applied": 0])
        // A 200 that does not say it replayed matches no rule: unknown, never a guess.
        XCTAssertEqual(interpret("charge", 200, #"{"data":{"point":1500}}"#).reason, "unexpected_response")
        XCTAssertEqual(interpret("issue", 409, #"{"error":{"code":"COUPON_EXHAUSTED"}}"#).reason, "sold_out")
        XCTAssertEqual(interpret("issue", 409, #"{"error":{"code":"ALREADY_ISSUED"}}"#).reason, "already_issued")
        let created = interpret("create", 201, #"{"data":{"purchaseId":41,"amount":3000}}"#)
        XCTAssertEqual(created.result, ["order": 41, "total": 3000])
        let deadlock = interpret("create", 503, #"{"error":{"code":"DB_DEADLOCK"}}"#)
        XCTAssertEqual(deadlock.outcome, .fail)
        XCTAssertEqual(deadlock.reason, "deadlock")
        let crashed = interpret("pay", 502, "<html>bad gateway</html>")
        XCTAssertEqual(crashed.outcome, .unknown)
        XCTAssertEqual(crashed.reason, "server_error")
        XCTAssertEqual(interpret("pay", 402, "{}").reason, "insufficient_balance")
        XCTAssertEqual(interpret("complete", 409, #"{"error":{"code":"CONCURRENT_MODIFICATION"}}"#).reason, "conflict")
        let teapot = interpret("cancel", 418, "")
        XCTAssertEqual(teapot.outcome, .unknown)
        XCTAssertEqual(teapot.reason, "unexpected_response")
        // An ok whose id is missing or not a whole number cannot be recorded as ok.
        for body in [#"{"data":{}}"#, #"{"data":{"purchaseId":"41","amount":3000}}"#, #"{"data":{"purchaseId":4.5,"amount":1}}"#, "not json"] {
            let broken = interpret("create", 201, body)
            XCTAssertEqual(broken.outcome, .unknown, body)
            XCTAssertNotNil(broken.note, body)
        }
    }

    func testSQLParametersAreBoundNotSpliced() throws {
        let target = try TargetParser.load(path: repository.appendingPathComponent("targets/shop.yaml").path)
        let items = target.seed[.orderItems]![0]
        XCTAssertEqual(items.parameters, ["order", "product", "quantity", "price"])
        XCTAssertTrue(items.sql.contains("VALUES ($1, $2, $3, $4)"), items.sql)
        // Casts, quoted strings, quoted identifiers and comments keep their colons.
        let statement = TargetStatement(
            source: "SELECT ':no', \":nor\", x::text -- :comment\nFROM t WHERE a = :a AND b = :b AND c = :a", line: 1)
        XCTAssertEqual(statement.parameters, ["a", "b"])
        XCTAssertEqual(statement.sql, "SELECT ':no', \":nor\", x::text -- :comment\nFROM t WHERE a = $1 AND b = $2 AND c = $1")
    }

    // MARK: the sample and its mistakes

    func testValidSampleParses() throws {
        let target = try TargetParser.parse(valid, file: "t.yaml")
        XCTAssertEqual(target.baseURLs, ["${MINI_URL}", "http://127.0.0.1:8081/api"])
        XCTAssertEqual(target.spread, .roundRobin)
        let charge = target.operations["charge"]!
        XCTAssertEqual(charge.responses.count, 3, "the operation's two rules, then the common one")
        let request = charge.request(arguments: ["user": .integer(5), "amount": .integer(700)])
        XCTAssertEqual(request.path, "/users/5/charges")
        XCTAssertEqual(String(decoding: request.body!, as: UTF8.self), #"{"amount":700,"fixed":3,"note":"charge of 700"}"#)
        XCTAssertThrowsError(try target.resolvedBaseURLs(environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("MINI_URL is not set"), "\(error)")
        }
        XCTAssertThrowsError(try target.resolvedBaseURLs(environment: ["MINI_URL": "ftp://x"])) { error in
            XCTAssertTrue("\(error)".contains("not an http:// URL"), "\(error)")
        }
        // A variable holding an https:// URL is refused when the target is used, as the file's own would be.
        XCTAssertThrowsError(try target.resolvedBaseURLs(environment: ["MINI_URL": "https://127.0.0.1:8443"])) { error in
            XCTAssertTrue("\(error)".contains("'https://127.0.0.1:8443': expected an http:// URL (TLS is not supported by the client)"), "\(error)")
        }
        XCTAssertThrowsError(try target.databaseURL(environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("MINI_DATABASE_URL is not set"), "\(error)")
        }
        XCTAssertEqual(try target.databaseURL(environment: ["MINI_DATABASE_URL": "postgresql://x/y"]), "postgresql://x/y")
    }

    func testUnknownKeysAndOperationsAreNamedWithASuggestion() {
        assertProblem(replacing("reset:", "rest:"), at: "18:1", contains: "unknown key 'rest' (did you mean 'reset'?)")
        assertProblem(replacing("  charge:\n", "  charges:\n"), at: "7:3", contains: "unknown key 'charges' (did you mean 'charge'?)")
        assertProblem(replacing("name: mini\n", ""), at: "1:1", contains: "missing key 'name'")
        assertProblem(replacing("      method: POST", "      method: FETCH"), at: "9:15", contains: "expected one of GET, POST, PUT, PATCH, DELETE")
    }

    func testTemplatesNameOnlyTheOperationsArguments() {
        assertProblem(
            replacing("/users/{user}/charges", "/users/{usr}/charges"), at: "10:13",
            contains: "found {usr} (did you mean 'user'?); expected one of the operation's arguments: {user}, {amount}, {key}")
        assertProblem(replacing("/users/{user}/charges", "/users/{key}/charges"), at: "10:13", contains: "{key} is not always there")
        assertProblem(replacing("/users/{user}/charges", "users/{user}"), at: "10:13", contains: "expected a path starting with '/'")
        assertProblem(replacing(#"note: "charge of {amount}""#, #"note: "charge {amount""#), at: "12:40", contains: "'{' is not closed")
        assertProblem(replacing("fixed: 3", "fixed: 2.5"), at: "12:69", contains: "expected a whole number")
        assertProblem(replacing(#"note: "charge of {amount}""#, #"lines: {$each_item: {id: 1}}"#), at: "12:41", contains: "$each_item is for the order's items")
    }

    func testResponseRulesSayWhatTheyExpected() {
        assertProblem(replacing("status: 201, outcome: ok", "status: 2001, outcome: ok"), at: "14:18", contains: "expected an HTTP status (100…599) or a class such as 4xx")
        assertProblem(replacing("outcome: fail, reason: conflict", "outcome: failed, reason: conflict"), at: "15:59", contains: "expected ok, fail or unknown")
        assertProblem(replacing("reason: conflict", "reason: conflikt"), at: "15:73", contains: "found 'conflikt' (did you mean 'conflict'?)")
        assertProblem(replacing("outcome: fail, reason: conflict", "outcome: fail"), at: "15:9", contains: "a fail needs a reason")
        assertProblem(replacing("{$.code: DUPLICATE}", "{code: DUPLICATE}"), at: "15:30", contains: "expected a JSON path into the response body, such as $.error.code")
        assertProblem(replacing("balance: $.balance", "balance: .balance"), at: "14:54", contains: "expected a JSON path into the response body (such as $.data.id) or a whole number")
        assertProblem(replacing("balance: $.balance", "order: $.id"), at: "14:45", contains: "unknown key 'order'; expected one of balance, applied, attempts")
        assertProblem(replacing("{status: 201, outcome: ok,", "{status: 201, outcome: ok, reason: conflict,"), at: "14:44", contains: "an ok response has no reason")
        assertProblem(replacing("  - {status: 201, outcome: ok, result: {balance: $.balance, applied: 1}}\n", ""), at: "14:11", contains: "no response is ok")
    }

    func testSQLSectionsCheckTheirParametersAndColumns() {
        assertProblem(replacing("(:id, :balance)", "(:id, :balanse)"), at: "20:10", contains: "found the parameter :balanse (did you mean ':balance'?); expected only :id, :balance")
        assertProblem(replacing("reset: [TRUNCATE wallet]", "reset: [DELETE FROM wallet WHERE id = :id]"), at: "18:9", contains: "expected none here")
        assertProblem(replacing("money AS balance", "money"), at: "22:13", contains: "'balance' is not named in it")
        assertProblem(replacing("  users: INSERT", "  user: INSERT"), at: "20:3", contains: "unknown key 'user' (did you mean 'users'?)")
        assertProblem(
            replacing("  users: INSERT INTO wallet (id, money) VALUES (:id, :balance)", "  products: INSERT INTO p (id) VALUES (:id)"),
            at: "7:3", contains: "operations.charge: works on users made before the run; expected seed.users")
        assertProblem(replacing("  balances: SELECT", "  balance: SELECT"), at: "22:3", contains: "did you mean 'balances'?")
    }

    func testInstancesDatabaseAndTimeouts() {
        assertProblem(replacing(#"["${MINI_URL}", http://127.0.0.1:8081/api]"#, "[]"), at: "3:14", contains: "expected at least one URL")
        assertProblem(replacing("http://127.0.0.1:8081/api", "127.0.0.1:8081"), at: "3:30", contains: "expected an http:// URL")
        // The client speaks plain HTTP/1.1: an https:// instance is refused here, not at the first request.
        assertProblem(
            replacing("http://127.0.0.1:8081/api", "https://127.0.0.1:8081/api"), at: "3:30",
            contains: "instances.base_urls[1]: found 'https://127.0.0.1:8081/api'; expected an http:// URL (TLS is not supported by the client)")
        XCTAssertEqual(problems(valid), [], "the negative control: the same file with http:// parses")
        XCTAssertThrowsError(try TargetParser.parse(replacing("http://127.0.0.1:8081/api", "https://127.0.0.1:8081/api"), file: "t.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("t.yaml:3:30: "), "the message names file:line:column: \($0)")
        }
        assertProblem(replacing("${MINI_URL}", "${MINI URL}"), at: "3:15", contains: "expected ${NAME} with NAME an environment variable")
        assertProblem(replacing("url_env: MINI_DATABASE_URL", "url_env: postgresql://u:secret@h/db"), at: "5:12", contains: "never the URL itself")
        assertProblem(replacing("database:\n", "http: {request_timeout: 10}\ndatabase:\n"), at: "4:25", contains: "expected a duration with its unit")
        assertProblem(replacing("database:\n", "http: {connect_timeout: 10m}\ndatabase:\n"), at: "4:25", contains: "at most 300 s")
    }

    func testCreateMustSendItsItemsAndReturnItsOrder() {
        let text = """
            name: mini
            instances: {base_urls: [http://127.0.0.1:1]}
            database: {url_env: DB}
            operations:
              create:
                request: {method: POST, path: /orders, body: {user: "{user}"}}
                responses: [{status: 201, outcome: ok}]
            reset: [TRUNCATE o]
            seed: {users: "INSERT INTO u VALUES (:id)", products: "INSERT INTO p VALUES (:id)"}
            state: {}
            """
        assertProblem(text, at: "6:50", contains: "the order's items are sent nowhere")
        assertProblem(text, at: "7:16", contains: "expected an ok response with result: {order: $.path.to.id}")
        assertProblem(text.replacingOccurrences(of: "body: {user: \"{user}\"}", with: "body: {user: \"{user}\", lines: {$each_item: {p: \"{item.product}\", q: \"{item.quantity}\"}}}"), at: "7:16", contains: "result: {order:")
    }

    func testYAMLErrorsAndRepeatedKeysArePositioned() {
        assertProblem(valid + "\nname: again", at: "23:1", contains: "'name' appears twice")
        assertProblem("name: [unclosed", at: "2:1", contains: "not valid YAML")
        assertProblem("- a list", at: "1:1", contains: "expected a mapping with keys name, instances")
        XCTAssertEqual(problems(""), ["1:1: found an empty file; expected a mapping with keys name, instances, database, operations, reset, seed, state"])
    }

    func testMissingFileAndOversizedFileAreRefused() throws {
        XCTAssertThrowsError(try TargetParser.load(path: "/nonexistent/target.yaml")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/target.yaml:1:1: error: cannot read the target file"), "\(error)")
        }
        let big = String(repeating: "# padding\n", count: 110_000)
        XCTAssertTrue(problems(big).first?.contains("larger than 1024 KiB") ?? false)
    }
}
