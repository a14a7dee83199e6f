import Foundation
import LockProofHTTP
import XCTest

/// The libmicrohttpd server on its own: addresses, ports, start and stop.
final class HTTPServerTests: XCTestCase {
    private static let hello: [String: HTTPHandler] = [
        "/hello": { request in HTTPResponse(status: 200, text: "hello \(request.method) \(request.path)\n") }
    ]

    func testBindAddressesParse() throws {
        XCTAssertEqual(try HTTPBindAddress(parsing: "127.0.0.1:9464"), try HTTPBindAddress(host: "127.0.0.1", port: 9464))
        XCTAssertEqual(try HTTPBindAddress(parsing: "[::1]:0"), try HTTPBindAddress(host: "::1", port: 0))
        XCTAssertEqual(try HTTPBindAddress(parsing: "localhost:80").host, "localhost")
        XCTAssertEqual(try HTTPBindAddress(parsing: "0.0.0.0:9464").description, "0.0.0.0:9464")
        XCTAssertEqual(try HTTPBindAddress(parsing: "[::1]:9464").description, "[::1]:9464")
        for bad in ["", "9464", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "127.0.0.1:-1",
            "::1:9464", "[::1]9464", "[::1", "example.com:9464", "256.0.0.1:80", "127.0.0.1:９４６４"]
        {
            XCTAssertThrowsError(try HTTPBindAddress(parsing: bad), "'\(bad)' should be refused")
        }
    }

    func testAnEphemeralPortIsReportedAndServes() throws {
        let server = HTTPServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0), routes: Self.hello)
        XCTAssertNil(server.boundPort)
        try server.start()
        defer { server.stop() }
        let port = try XCTUnwrap(server.boundPort)
        XCTAssertGreaterThan(port, 0)
        let response = try BlockingHTTPClient.get(port: port, path: "/hello")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "hello GET /hello\n")
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/nope").status, 404)
    }

    func testIPv6Loopback() throws {
        let server = HTTPServer(address: try HTTPBindAddress(parsing: "[::1]:0"), routes: Self.hello)
        do {
            try server.start()
        } catch {
            throw XCTSkip("no IPv6 loopback on this machine: \(error)")
        }
        defer { server.stop() }
        let response = try BlockingHTTPClient.get(host: "::1", port: try XCTUnwrap(server.boundPort), path: "/hello")
        XCTAssertEqual(response.status, 200)
    }

    func testStopClosesThePortAndTheServerCanStartAgain() throws {
        let server = HTTPServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0), routes: Self.hello)
        try server.start()
        let firstPort = try XCTUnwrap(server.boundPort)
        XCTAssertThrowsError(try server.start(), "a running server cannot start twice")
        server.stop()
        XCTAssertNil(server.boundPort)
        XCTAssertFalse(server.isRunning)
        XCTAssertThrowsError(try BlockingHTTPClient.get(port: firstPort, path: "/hello"), "nothing listens after stop")
        server.stop()  // stopping twice is harmless

        try server.start()
        defer { server.stop() }
        XCTAssertEqual(try BlockingHTTPClient.get(port: try XCTUnwrap(server.boundPort), path: "/hello").status, 200)
    }

    func testAPortInUseIsAClearError() throws {
        let first = HTTPServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0), routes: Self.hello)
        try first.start()
        defer { first.stop() }
        let second = HTTPServer(
            address: try HTTPBindAddress(host: "127.0.0.1", port: try XCTUnwrap(first.boundPort)), routes: Self.hello)
        XCTAssertThrowsError(try second.start()) { error in
            XCTAssertTrue("\(error)".contains("cannot listen on 127.0.0.1:"), "\(error)")
        }
        XCTAssertNil(second.boundPort)
    }

    func testReleasingARunningServerStopsIt() throws {
        var server: HTTPServer? = HTTPServer(address: try HTTPBindAddress(host: "127.0.0.1", port: 0), routes: Self.hello)
        try server?.start()
        let port = try XCTUnwrap(server?.boundPort)
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/hello").status, 200)
        server = nil
        XCTAssertThrowsError(try BlockingHTTPClient.get(port: port, path: "/hello"), "deinit stops the daemon")
    }
}
