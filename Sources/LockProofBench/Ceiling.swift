import Foundation
import LockProofCommerce
import LockProofPostgres
import LockProofScenario

/// A failure of the benchmark's own machinery (a tool missing, pgbench aborting): an error in every
/// output, never a number.
public struct BenchError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs an external program with a bound on its run time; returns its exit status and output.
func runProgram(_ path: String, _ arguments: [String], timeoutSeconds: Double, environment: [String: String]? = nil)
    throws -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let collected = LockedBuffer()
    pipe.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if !data.isEmpty { collected.append(data) }
    }
    try process.run()
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        process.terminate()
        _ = finished.wait(timeout: .now() + 5)
        pipe.fileHandleForReading.readabilityHandler = nil
        throw BenchError("\((path as NSString).lastPathComponent) did not finish within \(Int(timeoutSeconds)) s")
    }
    pipe.fileHandleForReading.readabilityHandler = nil
    collected.append(pipe.fileHandleForReading.readDataToEndOfFile())
    return (process.terminationStatus, String(decoding: collected.data, as: UTF8.self))
}

final class LockedBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var storage = Data()
    func append(_ data: Data) {
        lock.lock()
        storage.append(data)
        lock.unlock()
    }
    var data: Data {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// Finds a PostgreSQL or Redis tool: `pg_config --bindir` first (pgbench lives there on Debian),
/// then PATH.
func findTool(_ name: String) -> String? {
    var candidates: [String] = []
    for directory in ["/usr/bin", "/usr/local/bin", "/usr/lib/postgresql/15/bin"] {
        if let output = try? runProgram("\(directory)/pg_config", ["--bindir"], timeoutSeconds: 10), output.status == 0 {
            candidates.append(output.output.trimmingCharacters(in: .whitespacesAndNewlines) + "/" + name)
            break
        }
    }
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        candidates.append("\(directory)/\(name)")
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// What the statements of one strategy's operation are, traced from a real run of it.
public struct TracedOperation: Sendable {
    public let statements: [PostgresStatementTrace]
    public let inputs: [String: Int]
    public let script: PgbenchScript
}

/// Runs one operation of the cell's strategy (one client, one iteration, on the cell's seed with
/// random picks so ids are distinctive) and records every statement it sent.
func traceOperation(
    benchCase: BenchCase, strategy: String, contention: Contention, preset: BenchPreset, runner: ScenarioRunner,
    picksFrom cellScenario: Scenario
) throws -> TracedOperation {
    let scenario = try benchCase.scenario(
        strategy: strategy, clients: 1, contention: .spread, seconds: nil, iterations: 1, preset: preset, pick: .random,
        randomSeed: 97)
    let traces = TraceLog()
    let previous = runner.clientCreated
    runner.clientCreated = { _, client in
        (try? client.database)?.statementObserver = { traces.append($0) }
    }
    let previousDirectory = runner.historyDirectory
    let directory = try temporaryHistoryDirectory()
    runner.historyDirectory = directory
    defer {
        runner.clientCreated = previous
        runner.historyDirectory = previousDirectory
        try? FileManager.default.removeItem(at: directory)
    }
    let result = try runner.run(scenario)
    if let error = result.runError { throw BenchError("tracing \(benchCase.caseName.rawValue)/\(strategy): \(error)") }
    let history = try result.historyFile.map { try readHistory($0) } ?? []
    guard let entry = history.first, entry.outcome == .ok else {
        throw BenchError(
            "tracing \(benchCase.caseName.rawValue)/\(strategy): the traced operation did not succeed (\(history.first?.reason ?? "no operation"))")
    }
    var inputs = entry.arguments
    for (index, item) in (entry.items ?? []).enumerated() {
        inputs["item\(index)_product"] = item.productId
        inputs["item\(index)_quantity"] = item.quantity
    }
    let statements = traces.entries
    let script = try PgbenchScript.derive(from: statements, inputs: inputs, picks: PgbenchPicks.of(cellScenario))
    let differences = PgbenchScript.differences(script: script.text, trace: statements)
    guard differences.isEmpty else {
        throw BenchError("the pgbench script of \(benchCase.caseName.rawValue)/\(strategy) differs from the traced statements: \(differences.joined(separator: "; "))")
    }
    return TracedOperation(statements: statements, inputs: inputs, script: script)
}

final class TraceLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [PostgresStatementTrace] = []
    func append(_ trace: PostgresStatementTrace) {
        lock.lock()
        storage.append(trace)
        lock.unlock()
    }
    var entries: [PostgresStatementTrace] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// One pgbench run's summary.
public struct PgbenchResult: Sendable, Codable, Equatable {
    public let tps: Double
    public let transactions: Int
    public let failedTransactions: Int
    public let latencyAverageMilliseconds: Double?
}

/// Runs pgbench with a derived script: the same clients as the cell, the prepared protocol, a
/// fixed duration, on the database the cell was seeded into.
///
/// pgbench runs as many transactions per client as the LockProof run of the cell finished per
/// client, so both sides measure the same amount of work over about the same time.
func runPgbench(
    _ pgbench: String, script: PgbenchScript, clients: Int, transactionsPerClient: Int, databaseURL: String,
    directory: String
) throws -> PgbenchResult {
    let path = "\(directory)/ceiling-\(UUID().uuidString.prefix(8)).sql"
    try script.text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    var arguments = [
        "-n", "-M", "prepared", "-f", path, "-c", String(clients), "-j", String(min(clients, 2)),
        "-t", String(max(2, transactionsPerClient)), "-D", "clients=\(clients)", "-D", "n=0",
    ]
    for (name, value) in script.definitions.sorted(by: { $0.key < $1.key }) { arguments += ["-D", "\(name)=\(value)"] }
    arguments.append(databaseURL)
    let (status, output) = try runProgram(pgbench, arguments, timeoutSeconds: 300)
    guard status == 0 else {
        // pgbench's output names the failing statement; it carries no password (the URL is ours).
        let tail = output.split(separator: "\n").suffix(4).joined(separator: " | ")
        throw BenchError("pgbench exited with status \(status): \(redactedURL(tail))")
    }
    return try parsePgbenchOutput(output)
}

/// Reads tps, transactions and failures from pgbench's summary block.
public func parsePgbenchOutput(_ output: String) throws -> PgbenchResult {
    var tps: Double?
    var transactions = 0
    var failed = 0
    var latency: Double?
    for line in output.split(separator: "\n").map(String.init) {
        if line.hasPrefix("tps = "), tps == nil || line.contains("without initial connection time") {
            tps = Double(line.dropFirst(6).split(separator: " ").first ?? "")
        } else if line.hasPrefix("number of transactions actually processed:") {
            transactions = Int(line.split(separator: ":")[1].split(separator: "/")[0].trimmingCharacters(in: .whitespaces)) ?? 0
        } else if line.hasPrefix("number of failed transactions:") {
            failed = Int(line.split(separator: ":")[1].split(separator: "(")[0].trimmingCharacters(in: .whitespaces)) ?? 0
        } else if line.hasPrefix("latency average = ") {
            latency = Double(line.dropFirst("latency average = ".count).split(separator: " ").first ?? "")
        }
    }
    guard let tps, transactions > 0 else {
        throw BenchError("pgbench printed no tps or processed no transaction: \(output.suffix(300))")
    }
    return PgbenchResult(tps: tps, transactions: transactions, failedTransactions: failed, latencyAverageMilliseconds: latency)
}
