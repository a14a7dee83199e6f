import Foundation
import LockProofCommerce
@testable import LockProofScenario
import Synchronization
import XCTest

/// `TargetClient` against a real socket server made here (a thread, canned answers): one keep-alive
/// connection per client, the target's rules deciding ok/fail/unknown, results read from JSON
/// paths, and every wait bounded by the target's timeouts.
final class TargetClientTests: XCTestCase {
    private func target(connectTimeout: String = "1s", requestTimeout: String = "1s") throws -> Target {
        try cannedTarget(connectTimeout: connectTimeout, requestTimeout: requestTimeout)
    }

    private let create = cannedCreate

    func testResponsesMapToTheHistoryOnOneKeptAliveConnection() throws {
        let server = try CannedServer(cannedAnswers)
        defer { server.stop() }
        let client = TargetClient(target: try target(), baseURL: "http://127.0.0.1:\(server.port)")
        try client.open()
        defer { client.close() }
        let completions = (0..<5).map { _ in client.invoke(create) }
        try assertCannedExchange(completions, server)
    }

    func testASilentServerIsUnknownWithinTheRequestTimeout() throws {
        let server = try CannedServer([])  // accepts, reads, never answers
        defer { server.stop() }
        let client = TargetClient(target: try target(requestTimeout: "300ms"), baseURL: "http://127.0.0.1:\(server.port)")
        try client.open()
        defer { client.close() }
        let started = Date()
        let completion = client.invoke(create)
        XCTAssertEqual(completion, Completion(outcome: .unknown, reason: "timeout", result: nil))
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "bounded by the request timeout, not hung")
    }

    func testARefusedConnectionIsAFailureNothingWasSent() throws {
        let server = try CannedServer([])
        let port = server.port
        server.stop()  // nothing listens there any more
        let client = TargetClient(target: try target(), baseURL: "http://127.0.0.1:\(port)")
        try client.open()
        XCTAssertEqual(client.invoke(create), Completion(outcome: .error, reason: "connection_failed", result: nil))
    }

    func testChunkedAndLengthlessResponsesAreRead() {
        var chunked = ResponseReader()
        chunked.append(ArraySlice(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n".utf8)))
        XCTAssertEqual(chunked.complete().map { String(decoding: $0.body, as: UTF8.self) }, #"{"a":1}"#)
        var cut = ResponseReader()
        cut.append(ArraySlice(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}".utf8)))
        XCTAssertNil(cut.complete(), "a body shorter than its length is not complete")
        XCTAssertNil(cut.completeAtClose(), "and a close then is a lost connection")
        var lengthless = ResponseReader()
        lengthless.append(ArraySlice(Array("HTTP/1.0 200 OK\r\n\r\n{}".utf8)))
        XCTAssertEqual(lengthless.completeAtClose().map { String(decoding: $0.body, as: UTF8.self) }, "{}")
    }
}

/// A target of one operation (`create`) whose answers `CannedServer` gives, with these timeouts.
func cannedTarget(connectTimeout: String = "1s", requestTimeout: String = "1s") throws -> Target {
    try TargetParser.parse(
        """
        name: canned
        instances: {base_urls: ["http://127.0.0.1:1"]}
        database: {url_env: CANNED_DATABASE_URL}
        http: {connect_timeout: \(connectTimeout), request_timeout: \(requestTimeout)}
        operations:
          create:
            request:
              method: POST
              path: /orders
              body: {buyer: "{user}", lines: {$each_item: {sku: "{item.product}", n: "{item.quantity}"}}}
            responses:
              - {status: 201, outcome: ok, result: {order: $.data.id, total: $.data.total}}
              - {status: 409, when: {$.code: NO_STOCK}, outcome: fail, reason: insufficient_stock}
        responses:
          - {status: 503, when: {$.code: DEADLOCK}, outcome: fail, reason: deadlock}
          - {status: 5xx, outcome: unknown, reason: server_error}
        reset: [TRUNCATE x]
        seed:
          users: INSERT INTO x (id) VALUES (:id)
          products: INSERT INTO y (id) VALUES (:id)
        state:
          orders: SELECT 1 AS "order", 1 AS "user", 1 AS total, 'PENDING' AS status
        """, file: "canned.yaml")
}

/// The invocation the canned tests send: a create of two of product 3 by user 7.
let cannedCreate = Invocation(
    operation: .create, strategy: "seed", arguments: ["user": 7], items: [OrderItemRequest(productId: 3, quantity: 2)])

/// Five answers of the canned server, one per rule: ok with results, a named refusal, a shared
/// 503 rule, a 5xx left unknown, and an ok whose result is not a number (unknown)…
let cannedAnswers: [(Int, String)] = [
    (201, #"{"data": {"id": 41, "total": 900}}"#),
    (409, #"{"code": "NO_STOCK"}"#),
    (503, #"{"code": "DEADLOCK"}"#),
    (500, "oops, not JSON"),
    (201, #"{"data": {"id": "not a number"}}"#),
]

/// …and the completions they are, whatever the engine.
let cannedCompletions = [
    Completion(outcome: .success, reason: nil, result: ["order": 41, "total": 900]),
    Completion(outcome: .rejected, reason: "insufficient_stock", result: nil),
    Completion(outcome: .error, reason: "deadlock", result: nil),
    Completion(outcome: .unknown, reason: "server_error", result: nil),
    Completion(outcome: .unknown, reason: "unexpected_response", result: nil),
]

/// The five canned answers became `cannedCompletions`, on one keep-alive connection, and the first
/// request was the target's template rendered.
func assertCannedExchange(_ completions: [Completion], _ server: CannedServer, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(completions, cannedCompletions, file: file, line: line)
    XCTAssertEqual(server.connections, 1, "five requests, one keep-alive connection", file: file, line: line)
    let first = try XCTUnwrap(server.requests.first, file: file, line: line)
    XCTAssertTrue(first.hasPrefix("POST /orders HTTP/1.1\r\n"), first, file: file, line: line)
    XCTAssertTrue(first.hasSuffix(#"{"buyer":7,"lines":[{"n":2,"sku":3}]}"#), first, file: file, line: line)
}

/// A socket server on 127.0.0.1 (a free port) answering each request with the next canned answer;
/// with none left it reads and stays silent. Records the connections it accepted and the requests.
final class CannedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex<(connections: Int, requests: [String], stopped: Bool)>((0, [], false))
    private let answers: Mutex<[(Int, String)]>
    private let done = DispatchSemaphore(value: 0)

    var connections: Int { state.withLock { $0.connections } }
    var requests: [String] { state.withLock { $0.requests } }

    init(_ answers: [(Int, String)]) throws {
        self.answers = Mutex(answers)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 8) == 0 else { throw NSError(domain: "CannedServer", code: 1) }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    func stop() {
        state.withLock { $0.stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        _ = done.wait(timeout: .now() + 5)
    }

    private func serve() {
        defer { done.signal() }
        while !state.withLock({ $0.stopped }) {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            state.withLock { $0.connections += 1 }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !state.withLock({ $0.stopped }) {
                let count = recv(connection, &chunk, chunk.count, 0)
                if count == 0 { break }
                if count < 0 { continue }  // the receive timeout: look at `stopped` again
                buffer += chunk[0..<count]
                guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                guard buffer.count >= end.upperBound + length else { continue }
                state.withLock { $0.requests.append(String(decoding: buffer[..<(end.upperBound + length)], as: UTF8.self)) }
                buffer.removeFirst(end.upperBound + length)
                guard let (status, body) = answers.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                let response = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                _ = response.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            }
            close(connection)
        }
    }
}
