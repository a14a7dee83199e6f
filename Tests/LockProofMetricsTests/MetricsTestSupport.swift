import Foundation
import LockProofHTTP
import LockProofMetrics
import LockProofTestSupport
import XCTest

/// `promtool check metrics` on an exposition: its exit status and everything it printed.
func promtoolCheckMetrics(_ body: [UInt8]) throws -> ProcessOutput {
    guard let promtool = executableOnPath("promtool") else {
        XCTFail("promtool is not on PATH (apt-get install -y prometheus)")
        return ProcessOutput(status: -1, output: "")
    }
    return try runProgram(promtool, ["check", "metrics"], input: body)
}

/// Starts an endpoint on an ephemeral loopback port.
func startEndpoint(_ metrics: LockProofMetrics, limits: HTTPServer.Limits = HTTPServer.Limits()) throws -> (MetricsEndpoint, Int) {
    let endpoint = MetricsEndpoint(metrics: metrics, address: try HTTPBindAddress(host: "127.0.0.1", port: 0), limits: limits)
    try endpoint.start()
    let port = try XCTUnwrap(endpoint.boundPort)
    XCTAssertGreaterThan(port, 0)
    return (endpoint, port)
}

/// Scrapes /metrics over HTTP and parses it.
func scrape(port: Int) throws -> Exposition {
    let response = try BlockingHTTPClient.get(port: port, path: "/metrics")
    XCTAssertEqual(response.status, 200)
    return try Exposition(response.text)
}
