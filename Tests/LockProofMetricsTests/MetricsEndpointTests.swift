import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofTestSupport
import XCTest
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The endpoint over real loopback HTTP: the right answers to good requests, error codes for bad
/// ones, and service that survives them.
final class MetricsEndpointTests: XCTestCase {
    private var metrics: LockProofMetrics!
    private var endpoint: MetricsEndpoint!
    private var port = 0

    override func setUpWithError() throws {
        metrics = LockProofMetrics()
        (endpoint, port) = try startEndpoint(metrics)
    }

    override func tearDown() {
        endpoint?.stop()
    }

    private func assertStillServing(file: StaticString = #filePath, line: UInt = #line) throws {
        let response = try BlockingHTTPClient.get(port: port, path: "/metrics")
        XCTAssertEqual(response.status, 200, "the server stopped serving", file: file, line: line)
        XCTAssertTrue(response.text.contains("lockproof_build_info"), file: file, line: line)
    }

    func testMetricsHasThePrometheusContentType() throws {
        let response = try BlockingHTTPClient.get(port: port, path: "/metrics")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(response.header("Content-Length"), String(response.body.count))
        XCTAssertEqual(try Exposition(response.text).value("lockproof_build_info", ["version": LockProofBuild.version]), 1)
    }

    func testAStandardClientCanScrape() throws {
        let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/metrics"))
        let done = DispatchSemaphore(value: 0)
        let result = ScrapeResult()
        let task = URLSession.shared.dataTask(with: url) { data, response, error in
            result.set(data: data, response: response as? HTTPURLResponse, error: error)
            done.signal()
        }
        task.resume()
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "URLSession got no answer")
        let (data, response, error) = result.get()
        XCTAssertNil(error)
        XCTAssertEqual(response?.statusCode, 200)
        XCTAssertEqual(response?.value(forHTTPHeaderField: "Content-Type"), MetricsEndpoint.contentType)
        XCTAssertTrue(String(decoding: data ?? Data(), as: UTF8.self).contains("# TYPE lockproof_operations_total counter"))
    }

    /// HEAD is GET without the body (RFC 9110 §9.3.2): same status and headers, Content-Length
    /// announcing the GET's body, and not one byte after the headers. It was a 405.
    func testHeadAnswersLikeGetWithoutABody() throws {
        for path in ["/metrics", "/healthz"] {
            let get = try BlockingHTTPClient.get(port: port, path: path)
            let request = Array("HEAD \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
            let raw = try BlockingHTTPClient.exchange(raw: request, port: port)
            let headerEnd = try XCTUnwrap(raw.firstRange(of: Array("\r\n\r\n".utf8)), "\(path): no end of headers")
            XCTAssertEqual(raw.count, headerEnd.upperBound, "\(path): HEAD sent a body of \(raw.count - headerEnd.upperBound) bytes")
            let head = try BlockingHTTPClient.send(raw: request, port: port, responseHasBody: false)
            XCTAssertEqual(head.status, get.status, path)
            XCTAssertEqual(head.header("Content-Type"), get.header("Content-Type"), path)
            XCTAssertNil(head.header("Allow"), path)
            if path == "/healthz" {
                XCTAssertEqual(head.header("Content-Length"), String(get.body.count), "the length of the body GET sends")
            } else {
                // The exposition changes between two scrapes only in its values: a length near GET's.
                let length = try XCTUnwrap(head.header("Content-Length").flatMap { Int($0) }, "no Content-Length")
                XCTAssertGreaterThan(length, get.body.count / 2)
            }
        }
        try assertStillServing()
    }

    func testHealthz() throws {
        let response = try BlockingHTTPClient.get(port: port, path: "/healthz")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "ok\n")
    }

    func testAnUnhealthyReportIsA503() throws {
        let sick = MetricsEndpoint(
            metrics: metrics, address: try HTTPBindAddress(host: "127.0.0.1", port: 0),
            health: { HealthReport(healthy: false, detail: "database unreachable") })
        try sick.start()
        defer { sick.stop() }
        let response = try BlockingHTTPClient.get(port: try XCTUnwrap(sick.boundPort), path: "/healthz")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.text, "database unreachable\n")
    }

    func testUnknownPathsAre404() throws {
        for path in ["/", "/metric", "/metrics/", "/metrics/extra", "/../etc/passwd", "/%00", "/healthz?x=1/../metrics"] {
            let response = try BlockingHTTPClient.get(port: port, path: path)
            if path.hasPrefix("/healthz?") {
                XCTAssertEqual(response.status, 200, "the query string is not part of the path")
            } else {
                XCTAssertEqual(response.status, 404, path)
            }
        }
        try assertStillServing()
    }

    func testOtherMethodsAre405WithAllowGetAndHead() throws {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let response = try BlockingHTTPClient.request(method: method, port: port, path: "/metrics", body: Array("x=1".utf8))
            XCTAssertEqual(response.status, 405, method)
            XCTAssertEqual(response.header("Allow"), "GET, HEAD", method)
        }
        // A POST with a sizeable body is read and discarded, not served.
        let big = try BlockingHTTPClient.request(
            method: "POST", port: port, path: "/metrics", body: [UInt8](repeating: 0x61, count: 1 << 20))
        XCTAssertEqual(big.status, 405)
        try assertStillServing()
    }

    func testAHugeHeaderGetsAnErrorStatusAndTheServerKeepsServing() throws {
        let huge = String(repeating: "a", count: 64 * 1024)
        let response = try BlockingHTTPClient.get(port: port, path: "/metrics", headers: [HTTPHeader(name: "X-Huge", value: huge)])
        XCTAssertGreaterThanOrEqual(response.status, 400, "a 64 KiB header is refused")
        XCTAssertLessThan(response.status, 500)
        // Many header lines that add up past the limit.
        let many = (0..<2_000).map { HTTPHeader(name: "X-Header-\($0)", value: "value-\($0)") }
        let manyResponse = try BlockingHTTPClient.get(port: port, path: "/metrics", headers: many)
        XCTAssertGreaterThanOrEqual(manyResponse.status, 400)
        try assertStillServing()
    }

    func testGarbageRequestsGetAnErrorOrAClosedConnectionAndTheServerKeepsServing() throws {
        // A short connection timeout: some garbage (binary bytes) leaves libmicrohttpd waiting for
        // a request line that never comes, and the timeout is what cuts such a connection off.
        var limits = HTTPServer.Limits()
        limits.connectionTimeoutSeconds = 1
        let (strict, strictPort) = try startEndpoint(metrics, limits: limits)
        defer { strict.stop() }
        let garbage: [[UInt8]] = [
            Array("NOT HTTP AT ALL\r\n\r\n".utf8),
            Array("GET /metrics HTTP/9.9\r\n\r\n".utf8),
            Array("GET\r\n\r\n".utf8),
            [0x00, 0xFF, 0xFE, 0x0D, 0x0A, 0x0D, 0x0A],
            Array("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".utf8),
            Array("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n".utf8),
        ]
        for request in garbage {
            do {
                let response = try BlockingHTTPClient.send(raw: request, port: strictPort, timeoutSeconds: 60)
                XCTAssertGreaterThanOrEqual(response.status, 400, "garbage \(request.prefix(20)) was answered \(response.status)")
            } catch let error as HTTPServerError where error.message.contains("malformed response (0 bytes") {
                // Closing the connection without an answer is a fine reply to garbage.
            }
            let response = try BlockingHTTPClient.get(port: strictPort, path: "/metrics")
            XCTAssertEqual(response.status, 200, "the server stopped serving after \(request.prefix(20))")
        }
    }

    func testAStalledClientDoesNotBlockOthers() throws {
        // Half a request, then silence: libmicrohttpd must keep serving everyone else meanwhile.
        let stalled = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(stalled, 0)
        defer { close(stalled) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(stalled, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let partial = Array("GET /metrics HTTP/1.1\r\nHost: 127".utf8)
        XCTAssertEqual(partial.withUnsafeBytes { Glibc.send(stalled, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }, partial.count)
        for _ in 0..<5 { try assertStillServing() }
    }

    func testTwoHundredConcurrentScrapesDuringAWorkloadAllSucceedAndTheWorkloadIsRight() throws {
        try TestServers.reset()
        let db = try TestServers.database()
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        let scrapers = 200
        let chargers = 4
        let chargesEach = 25
        let amount = 10
        let metrics = self.metrics!
        let port = self.port

        // Scrapers and chargers leave one barrier together, so the scrapes land during the workload.
        let results = try runConcurrently(
            clients: scrapers + chargers, timeout: 300,
            setup: { index -> CommerceClient? in
                index < scrapers ? nil : try TestServers.client(events: metrics)
            }
        ) { index, client -> Int in
            guard let client else {
                let response = try BlockingHTTPClient.get(port: port, path: "/metrics", timeoutSeconds: 120)
                guard response.status == 200, (try? Exposition(response.text)) != nil else { return response.status }
                return response.status
            }
            let charge = ChargeBalance(client: client, strategy: .seed)
            var succeeded = 0
            for _ in 0..<chargesEach {
                let started = monotonicSeconds()
                do {
                    _ = try charge.charge(userId: user, amount: amount)
                    succeeded += 1
                    metrics.recordOperation(
                        case: .chargeBalance, strategy: ChargeBalanceStrategy.seed, outcome: .success,
                        seconds: monotonicSeconds() - started)
                } catch {
                    metrics.recordOperation(
                        case: .chargeBalance, strategy: ChargeBalanceStrategy.seed,
                        outcome: OperationOutcome.classify(error), seconds: monotonicSeconds() - started)
                }
            }
            return succeeded
        }

        let scrapeStatuses = results[..<scrapers].map { $0.value ?? -1 }
        XCTAssertEqual(scrapeStatuses.filter { $0 == 200 }.count, scrapers, "statuses: \(Set(scrapeStatuses)), errors: \(results[..<scrapers].compactMap(\.error).prefix(3))")
        let charged = results[scrapers...].map { $0.value ?? -1 }
        XCTAssertEqual(charged, Array(repeating: chargesEach, count: chargers), "every charge succeeded: \(results[scrapers...].compactMap(\.error))")
        XCTAssertEqual(
            try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), chargers * chargesEach * amount,
            "no lost update under the scrapes")

        let exposition = try scrape(port: port)
        let seedCharges = ["case": "charge-balance", "strategy": "seed"]
        XCTAssertEqual(
            exposition.value("lockproof_operations_total", seedCharges.merging(["outcome": "success"]) { $1 }),
            Double(chargers * chargesEach))
        XCTAssertEqual(exposition.value("lockproof_operation_duration_seconds_count", seedCharges), Double(chargers * chargesEach))
        let retries = try XCTUnwrap(exposition.value("lockproof_retry_attempts_total", ["case": "charge-balance"]))
        // Every attempt, first or retried, takes the Redis lock once.
        XCTAssertEqual(
            exposition.value("lockproof_lock_wait_seconds_count", ["case": "charge-balance", "lock": "redis"]),
            Double(chargers * chargesEach) + retries)
        let calls = exposition.samples(named: "lockproof_retry_calls_total").filter { $0.labels["case"] == "charge-balance" }
        XCTAssertEqual(calls.map(\.value).reduce(0, +), Double(chargers * chargesEach))
    }
}

final class ScrapeResult: Sendable {
    private let stored = Mutex<(Data?, HTTPURLResponse?, (any Error)?)>((nil, nil, nil))

    func set(data: Data?, response: HTTPURLResponse?, error: (any Error)?) {
        stored.withLock { $0 = (data, response, error) }
    }

    func get() -> (Data?, HTTPURLResponse?, (any Error)?) {
        stored.withLock { $0 }
    }
}
