import Foundation
import LockProofHTTP
import LockProofMetrics
import XCTest

/// One sample line of a Prometheus text exposition.
struct Sample: Equatable {
    let name: String
    let labels: [String: String]
    let value: Double
}

/// A parsed /metrics body: samples plus the `# TYPE` of each family.
struct Exposition {
    let samples: [Sample]
    let types: [String: String]

    init(_ text: String) throws {
        var samples: [Sample] = []
        var types: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            samples.append(try Self.parseSample(String(line)))
        }
        self.samples = samples
        self.types = types
    }

    /// The value of the one sample with exactly these labels, nil when there is none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { $0.name == name && $0.labels == labels }
        return matching.count == 1 ? matching[0].value : nil
    }

    func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// Family names that have at least one sample (histogram suffixes folded into the family).
    var familyNames: Set<String> {
        Set(
            samples.map { sample in
                for suffix in ["_bucket", "_sum", "_count"] where sample.name.hasSuffix(suffix) {
                    let family = String(sample.name.dropLast(suffix.count))
                    if types[family] == "histogram" { return family }
                }
                return sample.name
            })
    }

    private static func parseSample(_ line: String) throws -> Sample {
        guard let valueStart = line.lastIndex(of: " ") else { throw ParseError(line: line) }
        guard let value = Double(line[line.index(after: valueStart)...]) else { throw ParseError(line: line) }
        let series = line[..<valueStart]
        guard let open = series.firstIndex(of: "{") else {
            return Sample(name: String(series), labels: [:], value: value)
        }
        guard series.last == "}" else { throw ParseError(line: line) }
        var labels: [String: String] = [:]
        var rest = series[series.index(after: open)..<series.index(before: series.endIndex)]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)] == "\"" else {
                throw ParseError(line: line)
            }
            let key = String(rest[..<equals])
            var index = rest.index(equals, offsetBy: 2)
            var labelValue = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\" { index = rest.index(after: index) }
                labelValue.append(rest[index])
                index = rest.index(after: index)
            }
            guard index < rest.endIndex else { throw ParseError(line: line) }
            labels[key] = labelValue
            rest = rest[rest.index(after: index)...]
            if rest.hasPrefix(",") { rest = rest.dropFirst() }
        }
        return Sample(name: String(series[..<open]), labels: labels, value: value)
    }

    struct ParseError: Error, CustomStringConvertible {
        let line: String
        var description: String { "not a sample line: \(line)" }
    }
}

enum Repository {
    /// The checkout root, found from this file's path (Tests/LockProofMetricsTests/…).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// The built `lockproof` executable: next to the test bundle, since `swift test` builds every product.
    static func lockproofExecutable() throws -> URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var candidates = [testBinary.deletingLastPathComponent().appendingPathComponent("lockproof")]
        // On Linux the test bundle is `<build>/debug/LockProofPackageTests.xctest`; elsewhere it
        // may be a directory bundle deeper down.
        var folder = testBinary
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent()
            candidates.append(folder.appendingPathComponent("lockproof"))
        }
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate.path)
            {
                return candidate
            }
        }
        throw XCTSkip("the lockproof executable was not found next to \(testBinary.path); build it first")
    }
}

/// Finds an executable on PATH.
func executableOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}

struct ProgramTimedOut: Error, CustomStringConvertible {
    let program: String
    let seconds: Double
    var description: String { "\(program) did not finish within \(seconds) s: a hang" }
}

struct ProcessOutput {
    let status: Int32
    let output: String
}

/// Runs a program to completion with `input` on its stdin; stdout and stderr together.
/// `environment` is laid over this process's own.
func runProgram(
    _ executable: URL, _ arguments: [String], input: [UInt8] = [], environment: [String: String] = [:], timeoutSeconds: Double = 60
) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let stdin = Pipe()
    let output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    process.standardError = output
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    // Read on another thread while writing: a large input and output must not deadlock on full pipes.
    let collected = OutputCollector()
    let reader = Thread {
        collected.set(output.fileHandleForReading.readDataToEndOfFile())
    }
    reader.start()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        process.terminate()
        throw ProgramTimedOut(program: executable.lastPathComponent, seconds: timeoutSeconds)
    }
    let text = collected.wait(timeoutSeconds: timeoutSeconds)
    return ProcessOutput(status: process.terminationStatus, output: text)
}

final class OutputCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: Data?

    func set(_ value: Data) {
        condition.lock()
        data = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(timeoutSeconds: Double) -> String {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        while data == nil && condition.wait(until: deadline) {}
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}

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
