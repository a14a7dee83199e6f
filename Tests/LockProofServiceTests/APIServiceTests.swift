// Kept whole (over 400 lines): one end-to-end class whose tests share one way to start the service, call it and read the state.
import Foundation
import LockProofAPI
import LockProofCommerce
import LockProofHTTP
import LockProofMetrics
import LockProofPostgres
import LockProofService
import LockProofTestSupport
import XCTest
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The API end to end over HTTP, on the real PostgreSQL and Redis: every route, bad input that
/// writes nothing, racing charges that lose nothing (and the naive control that does), the rate
/// limit, and a connection flood that leaves /metrics answering.
final class APIServiceTests: XCTestCase {
    private var users: [Int] = []
    private var products: [Int] = []
    private var coupon = 0

    override func setUpWithError() throws {
        try TestServers.reset()
        let seed = SeedData(db: try TestServers.database())
        users = try seed.users(count: 3, balance: 1_000)
        products = try seed.products(count: 2, price: 10, stock: 5)
        coupon = try seed.coupon(totalQuantity: 1)
        // users[2] has no daily limit: a spend of theirs is refused (404), never unlimited.
        try seed.spendingLimits(users: Array(users[0...1]), dailyLimit: 1_000)
    }

    private final class Running {
        let service: APIService
        let server: APIServer
        let port: Int
        init(service: APIService, server: APIServer, port: Int) {
            self.service = service
            self.server = server
            self.port = port
        }
        deinit {
            server.stop()
            service.close()
        }
    }

    private func start(_ configure: (inout APIService.Options) -> Void = { _ in }) throws -> Running {
        var options = APIService.Options()
        options.workers = 8
        options.connections = 4
        options.redisConnections = 8
        options.poolWaitSeconds = 10
        configure(&options)
        let service = APIService(
            options: options, configuration: TestServers.configuration, shared: TestServers.shared, metrics: LockProofMetrics(),
            gateway: AlwaysApprovingGateway())
        let server = service.makeServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
        try server.start()
        return Running(service: service, server: server, port: try XCTUnwrap(server.boundPort))
    }

    private func call(
        _ api: Running, _ method: String, _ path: String, _ body: String? = nil, headers: [HTTPHeader] = []
    ) throws -> (status: Int, json: [String: Any], response: HTTPClientResponse) {
        var all = headers
        if body != nil { all.append(HTTPHeader(name: "Content-Type", value: "application/json")) }
        let response = try BlockingHTTPClient.request(
            method: method, port: api.port, path: path, headers: all, body: Array((body ?? "").utf8), timeoutSeconds: 30)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        if response.status >= 400 {
            XCTAssertEqual(response.header("Content-Type"), "application/problem+json", "\(method) \(path)")
            XCTAssertEqual(json["status"] as? Int, response.status)
        }
        return (response.status, json, response)
    }

    private func state() throws -> [String] {
        let db = try TestServers.database()
        return try [
            "SELECT string_agg(id || ':' || balance || ':' || version, ',' ORDER BY id) FROM users",
            "SELECT string_agg(id || ':' || stock || ':' || version, ',' ORDER BY id) FROM products",
            "SELECT string_agg(id || ':' || issued_quantity, ',' ORDER BY id) FROM coupons",
            "SELECT count(*)::text FROM user_coupons", "SELECT count(*)::text FROM orders", "SELECT count(*)::text FROM order_items",
            "SELECT count(*)::text FROM cart_items", "SELECT count(*)::text FROM balance_ledger",
            "SELECT count(*)::text FROM idempotency_keys", "SELECT count(*)::text FROM payment_intents",
            "SELECT count(*)::text FROM spends",
        ].map { try db.query($0).string(0, 0) ?? "" }
    }

    func testEveryRouteOverHTTP() throws {
        let api = try start()
        let user = users[0]
        XCTAssertEqual(try call(api, "GET", "/users/\(user)").json["balance"] as? Int, 1_000)

        let key = [HTTPHeader(name: "Idempotency-Key", value: "charge-1")]
        let first = try call(api, "POST", "/users/\(user)/charges", #"{"amount": 250}"#, headers: key)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.json["balance"] as? Int, 1_250)
        XCTAssertEqual(first.json["applied"] as? Bool, true)
        let repeated = try call(api, "POST", "/users/\(user)/charges", #"{"amount": 250}"#, headers: key)
        XCTAssertEqual(repeated.status, 200)
        XCTAssertEqual(repeated.json["applied"] as? Bool, false)
        XCTAssertEqual(try call(api, "GET", "/users/\(user)").json["balance"] as? Int, 1_250, "a repeated key applies once")

        let spent = try call(api, "POST", "/users/\(user)/spends", #"{"amount": 600}"#)
        XCTAssertEqual(spent.status, 201)
        XCTAssertEqual(spent.json["spent_today"] as? Int, 600)
        XCTAssertEqual(spent.json["daily_limit"] as? Int, 1_000)
        XCTAssertEqual(try call(api, "POST", "/users/\(user)/spends", #"{"amount": 400}"#).json["spent_today"] as? Int, 1_000, "up to the limit")
        let overLimit = try call(api, "POST", "/users/\(user)/spends", #"{"amount": 1}"#)
        XCTAssertEqual(overLimit.status, 409)
        XCTAssertEqual(overLimit.json["type"] as? String, "/problems/daily-limit-exceeded")
        XCTAssertEqual(overLimit.json["outcome"] as? String, "not_applied")
        XCTAssertEqual(try call(api, "GET", "/users/\(user)").json["balance"] as? Int, 1_250, "a spend leaves the balance alone")

        XCTAssertEqual(try call(api, "POST", "/users/\(user)/cart/items", #"{"product_id": \#(products[0]), "quantity": 3}"#).json["quantity"] as? Int, 3)
        XCTAssertEqual(try call(api, "POST", "/users/\(user)/cart/items", #"{"product_id": \#(products[0]), "quantity": 2}"#).json["quantity"] as? Int, 5)
        XCTAssertEqual(try call(api, "PUT", "/users/\(user)/cart/items/\(products[0])", #"{"quantity": 1}"#).json["quantity"] as? Int, 1, "lowered")

        let issued = try call(api, "POST", "/coupons/\(coupon)/issues", #"{"user_id": \#(user)}"#)
        XCTAssertEqual(issued.status, 201)
        XCTAssertEqual(try call(api, "POST", "/coupons/\(coupon)/issues", #"{"user_id": \#(users[1])}"#).status, 410, "sold out")
        XCTAssertEqual(try call(api, "GET", "/coupons/\(coupon)").json["remaining"] as? Int, 0)

        let order = try call(api, "POST", "/orders", #"{"user_id": \#(user), "items": [{"product_id": \#(products[1]), "quantity": 2}]}"#)
        XCTAssertEqual(order.status, 201)
        let orderId = try XCTUnwrap(order.json["id"] as? Int)
        XCTAssertEqual(order.response.header("Location"), "/orders/\(orderId)")
        XCTAssertEqual(order.json["total_amount"] as? Int, 20)
        let paid = try call(api, "POST", "/orders/\(orderId)/payment")
        XCTAssertEqual(paid.status, 200)
        XCTAssertEqual(paid.json["balance_after"] as? Int, 1_230)
        XCTAssertEqual(try call(api, "POST", "/orders/\(orderId)/payment").status, 409, "paid once")
        XCTAssertEqual(try call(api, "POST", "/orders/\(orderId)/cancel").status, 409, "a paid order is not cancelled")
        XCTAssertEqual(try call(api, "POST", "/orders/\(orderId)/complete").json["status"] as? String, "COMPLETED")
        let read = try call(api, "GET", "/orders/\(orderId)")
        XCTAssertEqual(read.json["status"] as? String, "COMPLETED")
        XCTAssertEqual((read.json["items"] as? [[String: Any]])?.first?["quantity"] as? Int, 2)

        let second = try call(api, "POST", "/orders", #"{"user_id": \#(users[1]), "items": [{"product_id": \#(products[0]), "quantity": 1}]}"#)
        XCTAssertEqual(try call(api, "POST", "/orders/\(second.json["id"] as! Int)/cancel").json["status"] as? String, "CANCELLED")
        XCTAssertEqual(
            try call(api, "POST", "/orders", #"{"user_id": \#(user), "items": [{"product_id": \#(products[0]), "quantity": 6}]}"#).status,
            409, "insufficient stock")

        let exposition = api.service.metrics.render()
        XCTAssertTrue(exposition.contains(#"lockproof_http_requests_total{route="charge_user",status_class="2xx"} 2"#), exposition)
        XCTAssertTrue(exposition.contains(#"lockproof_http_requests_total{route="issue_coupon",status_class="4xx"} 1"#))
        XCTAssertTrue(exposition.contains(#"lockproof_http_requests_total{route="spend_user",status_class="2xx"} 2"#))
        XCTAssertTrue(exposition.contains(#"lockproof_http_requests_total{route="spend_user",status_class="4xx"} 1"#))
    }

    func testBadInputAndUnknownIdsWriteNothing() throws {
        let api = try start()
        let user = users[0]
        let before = try state()
        let bad: [(String, String, String?, Int)] = [
            ("POST", "/users/\(user)/charges", #"{"amount": -1}"#, 422),
            ("POST", "/users/\(user)/charges", #"{"amount": 9223372036854775807}"#, 422),
            ("POST", "/users/\(user)/charges", #"{"amount": 1, "extra": true}"#, 422),
            ("POST", "/users/\(user)/charges", #"{"amount": "1"}"#, 422),
            ("POST", "/users/\(user)/charges", #"{"amount": 1"#, 400),
            ("POST", "/users/999999/charges", #"{"amount": 1}"#, 404),
            ("POST", "/users/\(user)/spends", #"{"amount": 0}"#, 422),
            ("POST", "/users/\(user)/spends", #"{"amount": 1000000000001}"#, 422),
            ("POST", "/users/\(user)/spends", #"{"amount": 1, "day": "2026-12-04"}"#, 422),
            ("POST", "/users/\(user)/spends", #"{"amount": 1.5}"#, 422),
            ("POST", "/users/\(user)/spends", #"{"amount": 1001}"#, 409),
            ("POST", "/users/999999/spends", #"{"amount": 1}"#, 404),
            ("POST", "/users/\(users[2])/spends", #"{"amount": 1}"#, 404),
            ("POST", "/users/\(user)/cart/items", #"{"product_id": 999999, "quantity": 1}"#, 404),
            ("POST", "/users/999999/cart/items", #"{"product_id": \#(products[0]), "quantity": 1}"#, 404),
            ("PUT", "/users/\(user)/cart/items/\(products[0])", #"{"quantity": 10001}"#, 422),
            ("POST", "/coupons/999999/issues", #"{"user_id": \#(user)}"#, 404),
            ("POST", "/coupons/\(coupon)/issues", #"{"user_id": 999999}"#, 404),
            ("POST", "/orders", #"{"user_id": \#(user), "items": [{"product_id": 999999, "quantity": 1}]}"#, 404),
            ("POST", "/orders", #"{"user_id": 999999, "items": [{"product_id": \#(products[0]), "quantity": 1}]}"#, 404),
            ("POST", "/orders", #"{"user_id": \#(user), "items": []}"#, 422),
            ("POST", "/orders/999999/payment", nil, 404),
            ("POST", "/orders/999999/complete", nil, 404),
            ("POST", "/orders/999999/cancel", nil, 404),
            ("GET", "/users/999999", nil, 404),
            ("GET", "/orders/0", nil, 422),
            ("DELETE", "/users/\(user)", nil, 405),
        ]
        for (method, path, body, status) in bad {
            let answer = try call(api, method, path, body)
            XCTAssertEqual(answer.status, status, "\(method) \(path) \(body ?? "")")
            XCTAssertEqual(answer.json["outcome"] as? String, "not_applied")
        }
        // Oversized body and wrong media type, straight on the wire.
        let big = try BlockingHTTPClient.request(
            method: "POST", port: api.port, path: "/users/\(user)/charges", headers: [HTTPHeader(name: "Content-Type", value: "application/json")],
            body: Array(repeating: UInt8(ascii: " "), count: APILimits.maximumBodyBytes + 1))
        XCTAssertEqual(big.status, 413)
        let plain = try BlockingHTTPClient.request(
            method: "POST", port: api.port, path: "/users/\(user)/charges", headers: [HTTPHeader(name: "Content-Type", value: "text/plain")],
            body: Array(#"{"amount": 1}"#.utf8))
        XCTAssertEqual(plain.status, 415)
        XCTAssertEqual(try state(), before, "a refused request wrote something")
    }

    func testOversizedHeadersAndPathsAreRefusedAndTheServerGoesOn() throws {
        let api = try start()
        // Headers beyond the per-connection memory (32 KiB): libmicrohttpd's own refusal (431).
        let huge = try BlockingHTTPClient.request(
            method: "GET", port: api.port, path: "/users/\(users[0])",
            headers: [HTTPHeader(name: "X-Padding", value: String(repeating: "a", count: 40_000))])
        XCTAssertTrue([413, 431].contains(huge.status), "\(huge.status)")
        let long = try BlockingHTTPClient.get(port: api.port, path: "/users/" + String(repeating: "1", count: 2_000))
        XCTAssertEqual(long.status, 414)
        XCTAssertEqual(long.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(try BlockingHTTPClient.get(port: api.port, path: "/users/\(users[0])").status, 200)
        XCTAssertTrue(api.service.metrics.render().contains(#"lockproof_http_requests_total{route="unmatched",status_class="4xx"} 1"#))
    }

    func testTheBalanceLimitRefusesAChargeThatWouldOverflow() throws {
        let api = try start()
        let db = try TestServers.database()
        try db.query("UPDATE users SET balance = $1 WHERE id = $2", [Int(APILimits.maximumBalance) - 10, users[2]])
        let refused = try call(api, "POST", "/users/\(users[2])/charges", #"{"amount": 11}"#)
        XCTAssertEqual(refused.status, 409)
        XCTAssertEqual(refused.json["type"] as? String, "/problems/balance-limit")
        XCTAssertEqual(try call(api, "POST", "/users/\(users[2])/charges", #"{"amount": 10}"#).status, 200)
        try db.query("UPDATE users SET balance = $1 WHERE id = $2", [Int.max, users[2]])
        XCTAssertEqual(try call(api, "POST", "/users/\(users[2])/charges", #"{"amount": 1}"#).status, 409, "no overflow trap")
    }

    /// 16 clients at a barrier, 5 charges of 10 each on one hot user, over HTTP: the seed's design
    /// loses nothing; the naive control (think time widening its read-write gap) is caught losing updates.
    private func raceCharges(strategy: String) throws -> (expected: Int, actual: Int, statuses: [Int]) {
        let statuses = try race(
            "charge-balance=\(strategy)", thinkSeconds: 0.003, requests: 5, path: "/users/\(users[0])/charges", body: #"{"amount": 10}"#)
        let balance = try TestServers.database().query("SELECT balance FROM users WHERE id = $1", [users[0]]).int(0, 0)!
        return (1_000 + 10 * statuses.filter { $0 == 200 }.count, balance, statuses)
    }

    /// 16 clients at a barrier, each posting `body` to `path` `requests` times over HTTP, against an
    /// API service running `strategy` (case=strategy) with `thinkSeconds` between read and write.
    private func race(_ strategy: String, thinkSeconds: Double, requests: Int, path: String, body: String) throws -> [Int] {
        let api = try start {
            $0.strategies = try! APIStrategies.parse(strategy)
            $0.settings.processingDelaySeconds = thinkSeconds
            $0.workers = 16
            $0.connections = 8
        }
        let port = api.port
        let results = try runConcurrently(clients: 16, timeout: 120, setup: { _ in () }) { _, _ -> [Int] in
            try (0..<requests).map { _ in
                try BlockingHTTPClient.request(
                    method: "POST", port: port, path: path, headers: [HTTPHeader(name: "Content-Type", value: "application/json")],
                    body: Array(body.utf8)
                ).status
            }
        }
        return try results.flatMap { try $0.get() }
    }

    func testRacingChargesOverHTTPLoseNothingUnderTheSeedDesign() throws {
        let (expected, actual, statuses) = try raceCharges(strategy: "seed")
        XCTAssertEqual(statuses.count, 80)
        XCTAssertFalse(statuses.contains { $0 >= 500 }, "\(statuses)")
        XCTAssertGreaterThan(statuses.filter { $0 == 200 }.count, 0)
        XCTAssertEqual(actual, expected, "acknowledged charges lost")
    }

    func testTheNaiveControlLosesChargesOverHTTPAndIsCaught() throws {
        let (expected, actual, statuses) = try raceCharges(strategy: "naive")
        XCTAssertEqual(statuses.filter { $0 == 200 }.count, 80)
        XCTAssertLessThan(actual, expected, "the naive control should lose updates with 16 racing clients")
    }

    /// 16 clients at a barrier, 4 spends of 100 each by one user whose daily limit is 1,000, over
    /// HTTP: (acknowledged spends, the day's total in the table, statuses).
    private func raceSpends(strategy: String, thinkSeconds: Double = 0.005) throws -> (acknowledged: Int, total: Int, statuses: [Int]) {
        let statuses = try race(
            "daily-spend=\(strategy)", thinkSeconds: thinkSeconds, requests: 4, path: "/users/\(users[0])/spends", body: #"{"amount": 100}"#)
        let total = try TestServers.database().query(
            "SELECT COALESCE(sum(amount), 0)::bigint FROM spends WHERE user_id = $1 AND day = current_date", [users[0]]).int(0, 0)!
        return (100 * statuses.filter { $0 == 201 }.count, total, statuses)
    }

    func testRacingSpendsOverHTTPStayUnderTheDailyLimitUnderTheSeedDesign() throws {
        let (acknowledged, total, statuses) = try raceSpends(strategy: "seed")
        XCTAssertEqual(statuses.count, 64)
        XCTAssertTrue(statuses.allSatisfy { $0 == 201 || $0 == 409 }, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 201 }.count, 10, "exactly the limit's worth is spent: \(statuses)")
        XCTAssertEqual(total, acknowledged, "every acknowledged spend is in the table, nothing else")
        XCTAssertLessThanOrEqual(total, 1_000)
    }

    func testTheNoLockControlSkewsPastTheDailyLimitOverHTTPAndIsCaught() throws {
        // A wider read-to-insert window: the skew needs snapshots that overlap, even on a loaded machine.
        let (acknowledged, total, statuses) = try raceSpends(strategy: "repeatable-read-no-lock", thinkSeconds: 0.03)
        XCTAssertEqual(total, acknowledged)
        XCTAssertGreaterThan(total, 1_000, "write skew should pass the daily limit with 16 racing clients: \(statuses)")
    }

    func testThePerUserRateLimitAnswers429WithRetryAfterAndCountsIt() throws {
        let api = try start { $0.rateLimit = RateLimit(requests: 3, windowSeconds: 60) }
        let statuses = try (0..<5).map { _ in try call(api, "GET", "/users/\(users[0])") }
        XCTAssertEqual(statuses.map(\.status), [200, 200, 200, 429, 429])
        let retryAfter = Int(statuses[3].response.header("Retry-After") ?? "")
        XCTAssertNotNil(retryAfter)
        XCTAssertTrue((1...60).contains(retryAfter ?? 0))
        XCTAssertEqual(try call(api, "GET", "/users/\(users[1])").status, 200, "per user")
        XCTAssertEqual(try call(api, "GET", "/coupons/\(coupon)").status, 200, "routes without a user are not limited")
        XCTAssertTrue(api.service.metrics.render().contains(#"lockproof_http_rate_limited_total{route="get_user"} 2"#))
    }

    func testAFullQueueIsAnswered503AndWritesNothing() throws {
        // One worker, a queue of one: requests beyond are refused at once, never left hanging.
        let api = try start {
            $0.workers = 1
            $0.queueCapacity = 1
            $0.settings.processingDelaySeconds = 0.2
        }
        let port = api.port
        let user = users[0]
        let results = try runConcurrently(clients: 6, timeout: 60, setup: { _ in () }) { _, _ -> Int in
            try BlockingHTTPClient.request(
                method: "POST", port: port, path: "/users/\(user)/charges",
                headers: [HTTPHeader(name: "Content-Type", value: "application/json")], body: Array(#"{"amount": 1}"#.utf8)
            ).status
        }
        let statuses = try results.map { try $0.get() }
        XCTAssertTrue(statuses.contains(503), "\(statuses)")
        XCTAssertTrue(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses)")
        let balance = try TestServers.database().query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0)!
        XCTAssertEqual(balance, 1_000 + statuses.filter { $0 == 200 }.count, "a 503 wrote nothing")
    }

    func testAFloodOfTwoThousandConnectionsOnTheAPIPortLeavesMetricsAnswering() throws {
        raiseOpenFileLimit()
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur >= 2 * 2_000 + 512 else {
            throw XCTSkip("the open-file limit (\(limit.rlim_cur)) is too low to hold 2,000 connections on both ends")
        }
        let api = try start()
        let endpoint = MetricsEndpoint(metrics: api.service.metrics, address: try HTTPBindAddress(host: "127.0.0.1", port: 0))
        try endpoint.start()
        defer { endpoint.stop() }
        let metricsPort = try XCTUnwrap(endpoint.boundPort)
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        for index in 0..<2_000 {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            XCTAssertGreaterThanOrEqual(descriptor, 0)
            sockets.append(descriptor)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(api.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            XCTAssertEqual(connected, 0)
            // Half idle, half slow senders that never finish their headers.
            if index % 2 == 1 {
                let prefix = Array("POST /users/1/charges HTTP/1.1\r\nHost: x\r\n".utf8)
                _ = prefix.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
        for _ in 0..<10 {
            let scrape = try BlockingHTTPClient.get(port: metricsPort, path: "/metrics", timeoutSeconds: 3)
            XCTAssertEqual(scrape.status, 200)
            XCTAssertTrue(scrape.text.contains("lockproof_http_requests_total"))
        }
        XCTAssertEqual(try BlockingHTTPClient.get(port: api.port, path: "/users/\(users[0])", timeoutSeconds: 10).status, 200)
    }

    /// A session lost mid-transaction (the server terminates it during the think time between the
    /// read and the write): 500 with `outcome: unknown`, never a 4xx that says nothing happened.
    func testASessionLostMidTransactionIsA5xxWithAnUnknownOutcome() throws {
        let api = try start {
            $0.strategies = try! APIStrategies.parse("charge-balance=pessimistic")
            $0.settings.processingDelaySeconds = 1.5
        }
        let port = api.port
        let user = users[0]
        let answer = AnswerBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            answer.set(
                Result {
                    try BlockingHTTPClient.request(
                        method: "POST", port: port, path: "/users/\(user)/charges",
                        headers: [HTTPHeader(name: "Content-Type", value: "application/json")], body: Array(#"{"amount": 5}"#.utf8))
                })
            done.signal()
        }.start()
        // Wait (bounded) until the charge holds its row lock, then end every client session.
        let db = try TestServers.database()
        var terminated = 0
        for _ in 0..<100 where terminated == 0 {
            Thread.sleep(forTimeInterval: 0.05)
            let locked = try db.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
                [CommerceClient.applicationName]).int(0, 0) ?? 0
            if locked > 0 {
                terminated = try db.query(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
                    [CommerceClient.applicationName]).int(0, 0) ?? 0
            }
        }
        XCTAssertGreaterThan(terminated, 0, "the charge never held its transaction open")
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "no answer")
        let response = try XCTUnwrap(answer.value).get()
        XCTAssertEqual(response.status, 500, response.text)
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        XCTAssertEqual(json?["outcome"] as? String, "unknown")
        XCTAssertEqual(json?["type"] as? String, "/problems/outcome-unknown")
        // The service keeps answering on a fresh session.
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/users/\(user)").status, 200)
    }

    func testCoreErrorsMapToTheirProblems() {
        let lost = APIService.problem(for: PostgresError(kind: .connectionLost, sqlState: "57P01", message: "terminated"))
        XCTAssertEqual(lost.status, 500)
        XCTAssertEqual(lost.outcome, .unknown)
        XCTAssertEqual(APIService.problem(for: GatewayTimeout(orderId: 1)).status, 504)
        XCTAssertEqual(APIService.problem(for: GatewayTimeout(orderId: 1)).outcome, .unknown)
        XCTAssertEqual(APIService.problem(for: DomainError.soldOut(couponId: 1)).status, 410)
        XCTAssertEqual(APIService.problem(for: DomainError.notFound(entity: "user", id: 1)).status, 404)
        XCTAssertEqual(APIService.problem(for: DomainError.conflict(entity: "order", id: 1)).status, 409)
        let overLimit = APIService.problem(for: DailyLimitExceeded(userId: 1, spentToday: 900, limit: 1_000, requested: 200))
        XCTAssertEqual(overLimit.status, 409)
        XCTAssertEqual(overLimit.slug, "daily-limit-exceeded")
        XCTAssertEqual(overLimit.outcome, .notApplied)
        let deadlock = APIService.problem(for: PostgresError(kind: .deadlock, sqlState: "40P01", message: "deadlock"))
        XCTAssertEqual(deadlock.status, 409)
        XCTAssertEqual(deadlock.outcome, .notApplied)
        let unreachable = APIService.problem(for: PostgresError(kind: .connectionFailed, sqlState: nil, message: "refused"))
        XCTAssertEqual(unreachable.status, 503)
        XCTAssertNotNil(unreachable.retryAfterSeconds)
    }
}

/// One result handed from a thread to the test.
private final class AnswerBox: Sendable {
    private let stored = Mutex<Result<HTTPClientResponse, any Error>?>(nil)
    func set(_ result: Result<HTTPClientResponse, any Error>) { stored.withLock { $0 = result } }
    var value: Result<HTTPClientResponse, any Error>? { stored.withLock { $0 } }
}
