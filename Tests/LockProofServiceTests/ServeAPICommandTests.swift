import Foundation
import LockProofHTTP
import LockProofTestSupport
import XCTest
import Synchronization

/// `lockproof serve --api-address` as an operator runs it: the built binary in its own process.
final class ServeAPICommandTests: XCTestCase {
    private var binary: URL {
        get throws {
            let url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
                .appendingPathComponent("lockproof")
            guard FileManager.default.isExecutableFile(atPath: url.path) else {
                throw XCTSkip("lockproof was not built next to the tests (\(url.path))")
            }
            return url
        }
    }

    /// Collects a pipe's output on a thread of its own; `wait` polls it with a deadline.
    private final class Output: Sendable {
        private let state = Mutex((data: Data(), closed: false))
        init(_ handle: FileHandle) {
            Thread { [self] in
                while true {
                    let chunk = handle.availableData
                    state.withLock { if chunk.isEmpty { $0.closed = true } else { $0.data.append(chunk) } }
                    if chunk.isEmpty { return }
                }
            }.start()
        }
        var closed: Bool { state.withLock { $0.closed } }
        var text: String { state.withLock { String(decoding: $0.data, as: UTF8.self) } }
        func wait(for needle: String, seconds: Double) -> Bool {
            let deadline = Date(timeIntervalSinceNow: seconds)
            while Date() < deadline {
                if text.contains(needle) { return true }
                if closed { return text.contains(needle) }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
    }

    private func launch(_ arguments: [String]) throws -> (Process, Output, Output) {
        let process = Process()
        process.executableURL = try binary
        process.arguments = ["serve"] + arguments
        process.environment = ProcessInfo.processInfo.environment
            .merging(["LOCKPROOF_DATABASE_URL": TestServers.configuration.databaseURL]) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        return (process, Output(stdout.fileHandleForReading), Output(stderr.fileHandleForReading))
    }

    private func waitForExit(_ process: Process, seconds: Double = 60) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            return false
        }
        return true
    }

    func testBadAPIOptionsExit2NamingTheOptionAndValue() throws {
        let cases: [([String], String)] = [
            (["--api-address", "127.0.0.1:0", "--strategy", "charge-balance=optimistic"], "'optimistic' is not a strategy of charge-balance"),
            (["--api-address", "127.0.0.1:0", "--strategy", "refund=seed"], "unknown case 'refund'"),
            (["--api-address", "127.0.0.1:0", "--strategy", "charge-balance=seed,charge-balance=naive"], "named twice"),
            (["--api-address", "127.0.0.1:0", "--rate-limit", "20/day"], "--rate-limit: '20/day'"),
            (["--api-address", "127.0.0.1:0", "--rate-limit", "0/s"], "--rate-limit: '0/s'"),
            (["--api-address", "127.0.0.1:0", "--workers", "0"], "--workers: found 0"),
            (["--api-address", "127.0.0.1:0", "--connections", "100000"], "--connections: found 100000"),
            (["--api-address", "nowhere:80"], "--api-address nowhere:80"),
            (["--strategy", "charge-balance=seed"], "give --api-address too"),
            (["--api-address", "127.0.0.1:0", "--processing-delay", "2"], "--processing-delay: found 2"),
            (["--api-address", "127.0.0.1:0", "--gateway-latency", "-1"], "--gateway-latency: found -1"),
            (["--processing-delay", "0.1"], "--processing-delay and --gateway-latency configure the API"),
        ]
        for (arguments, message) in cases {
            let (process, stdout, stderr) = try launch(["--metrics-address", "127.0.0.1:0"] + arguments)
            XCTAssertTrue(waitForExit(process), "\(arguments) did not exit")
            XCTAssertEqual(process.terminationStatus, 2, "\(arguments): \(stderr.text)")
            _ = stderr.wait(for: message, seconds: 5)
            XCTAssertTrue(stderr.text.contains(message), "\(arguments): \(stderr.text)")
            XCTAssertEqual(stdout.text, "", "\(arguments) printed an address")
        }
    }

    func testServePrintsTheAPIAddressAnswersAndStopsCleanly() throws {
        try TestServers.reset()
        let (process, stdout, stderr) = try launch([
            "--metrics-address", "127.0.0.1:0", "--api-address", "127.0.0.1:0", "--workers", "4", "--connections", "2",
            "--strategy", "charge-balance=atomic",
        ])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        XCTAssertTrue(stdout.wait(for: "metrics: http://", seconds: 60), "no address: \(stderr.text)")
        let lines = stdout.text.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("api: http://127.0.0.1:") == true, "\(lines)")
        let port = try XCTUnwrap(lines.first.flatMap { Int($0.split(separator: ":").last ?? "") })
        let missing = try BlockingHTTPClient.get(port: port, path: "/users/424242", timeoutSeconds: 30)
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.header("Content-Type"), "application/problem+json")
        XCTAssertTrue(stderr.text.contains("charge-balance=atomic"), stderr.text)
        kill(process.processIdentifier, SIGTERM)
        XCTAssertTrue(waitForExit(process))
        XCTAssertEqual(process.terminationStatus, 0, stderr.text)
    }
}
