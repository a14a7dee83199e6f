import Foundation
import LockProofHTTP
import LockProofMetrics
import LockProofTestSupport
import XCTest

/// `lockproof serve` as an operator runs it: the built binary in its own process.
final class ServeCommandTests: XCTestCase {
    /// Starts `lockproof serve` on an ephemeral port and returns it with the port it printed.
    private func startServe(environment: [String: String] = [:]) throws -> (Process, Int, LineReader) {
        let process = Process()
        process.executableURL = try BuiltBinary.lockproof()
        process.arguments = ["serve", "--metrics-address", "127.0.0.1:0", "--pending-interval", "0.2"]
        // The tests' own database (see TestServers), not the one a `make verify` may be using.
        process.environment = ProcessInfo.processInfo.environment
            .merging(TestServers.binaryEnvironment) { $1 }.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        let lines = LineReader(output.fileHandleForReading)
        try process.run()
        guard let line = lines.nextLine(containing: "metrics: http://", timeoutSeconds: 60) else {
            process.terminate()
            XCTFail("serve printed no address")
            throw LineReader.NoLine()
        }
        guard let portText = line.split(separator: ":").last?.split(separator: "/").first, let port = Int(portText) else {
            process.terminate()
            throw LineReader.NoLine()
        }
        return (process, port, lines)
    }

    private func waitForExit(_ process: Process, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let exited = DispatchSemaphore(value: 0)
        Thread {
            process.waitUntilExit()
            exited.signal()
        }.start()
        if exited.wait(timeout: .now() + 60) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            XCTFail("lockproof serve did not stop", file: file, line: line)
            return false
        }
        return true
    }

    func testServeScrapesAndStopsCleanlyOnSIGTERM() throws {
        let (process, port, _) = try startServe()
        let response = try BlockingHTTPClient.get(port: port, path: "/metrics")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), MetricsEndpoint.contentType)
        let exposition = try Exposition(response.text)
        XCTAssertEqual(exposition.familyNames, Set(MetricCatalog.all.map(\.name)))
        XCTAssertNotNil(exposition.value("lockproof_compensations_pending"), "serve counts pending compensations")
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/healthz").status, 200)

        kill(process.processIdentifier, SIGTERM)
        guard waitForExit(process) else { return }
        XCTAssertEqual(process.terminationReason, .exit, "it exits, it is not killed by the signal")
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertThrowsError(try BlockingHTTPClient.get(port: port, path: "/metrics"), "the port is closed")
    }

    func testServeStopsCleanlyOnSIGINT() throws {
        let (process, port, _) = try startServe()
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/healthz").status, 200)
        kill(process.processIdentifier, SIGINT)
        guard waitForExit(process) else { return }
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 0)
    }

    func testABadMetricsAddressExitsWithStatusTwoAndSaysWhy() throws {
        let executable = try BuiltBinary.lockproof()
        for bad in ["nonsense", "127.0.0.1:70000", "example.com:9464"] {
            let result = try runProgram(executable, ["serve", "--metrics-address", bad])
            XCTAssertEqual(result.status, 2, "\(bad): \(result.output)")
            XCTAssertTrue(result.output.contains("--metrics-address"), result.output)
        }
    }

    func testUnreachableServersExitWithStatusTwoWithoutPrintingThePassword() throws {
        let executable = try BuiltBinary.lockproof()
        let secret = "s3cr3t-not-for-logs"
        let cases = [
            ["LOCKPROOF_DATABASE_URL": "postgresql://lockproof:\(secret)@127.0.0.1:1/lockproof"],
            ["LOCKPROOF_REDIS_URL": "redis://:\(secret)@127.0.0.1:1/0"],
        ]
        for environment in cases {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["serve", "--metrics-address", "127.0.0.1:0"]
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard waitForExit(process) else { return }
            XCTAssertEqual(process.terminationStatus, 2, text)
            XCTAssertTrue(text.contains("cannot reach"), text)
            XCTAssertTrue(text.contains(":***@"), "the URL is shown redacted: \(text)")
            XCTAssertFalse(text.contains(secret), "the password was printed: \(text)")
        }
    }

    func testHelpDescribesEverySubcommand() throws {
        let executable = try BuiltBinary.lockproof()
        let root = try runProgram(executable, ["--help"])
        XCTAssertEqual(root.status, 0)
        XCTAssertTrue(root.output.contains("serve"))
        XCTAssertTrue(root.output.contains("bench-metrics"))
        let serve = try runProgram(executable, ["serve", "--help"])
        XCTAssertEqual(serve.status, 0)
        XCTAssertTrue(serve.output.contains("--metrics-address"))
        XCTAssertTrue(serve.output.contains("SIGTERM"))
    }
}
