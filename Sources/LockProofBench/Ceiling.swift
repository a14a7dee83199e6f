import Foundation
import LockProofCommerce
import LockProofPostgres
import LockProofScenario
import Synchronization

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
    // One reader to the end of the output on a thread of its own: a readability handler can still
    // be holding a chunk when it is removed, and pgbench's summary went missing that way.
    let collected = Mutex(Data())
    let outputClosed = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    let reader = Thread {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        collected.withLock { $0 = data }
        outputClosed.signal()
    }
    reader.start()
    let name = (path as NSString).lastPathComponent
    if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        process.terminate()
        _ = finished.wait(timeout: .now() + 5)
        throw BenchError("\(name) did not finish within \(Int(timeoutSeconds)) s")
    }
    // The output ends when the program's end of the pipe closes, at its exit.
    guard outputClosed.wait(timeout: .now() + 10) == .success else {
        throw BenchError("\(name) exited but its output stayed open (a child of it still holds it)")
    }
    let output = collected.withLock { $0 }
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
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

    /// The pgbench script of these statements, its inputs picked as `cellScenario`'s clients pick
    /// them; refused when it differs from the trace.
    public func script(caseName: CaseName, strategy: String, picksFrom cellScenario: Scenario) throws -> PgbenchScript {
        let script = try PgbenchScript.derive(from: statements, inputs: inputs, picks: PgbenchPicks.of(cellScenario))
        let differences = PgbenchScript.differences(script: script.text, trace: statements)
        guard differences.isEmpty else {
            throw BenchError("the pgbench script of \(caseName.rawValue)/\(strategy) differs from the traced statements: \(differences.joined(separator: "; "))")
        }
        return script
    }
}

/// Runs one operation of a strategy (one client, one iteration, on the spread seed with random
/// picks so ids are distinctive) and records every statement it sent. The statements do not
/// depend on the contention (only the ids do), so one trace serves every cell of the strategy.
func traceOperation(benchCase: BenchCase, strategy: String, preset: BenchPreset, runner: ScenarioRunner) throws
    -> TracedOperation
{
    let scenario = try benchCase.scenario(
        strategy: strategy, clients: 1, contention: .spread, iterations: 1, preset: preset, pick: .random, randomSeed: 97)
    let traces = Mutex<[PostgresStatementTrace]>([])
    let previous = runner.clientCreated
    runner.clientCreated = { _, client in
        (try? client.database)?.statementObserver = { trace in traces.withLock { $0.append(trace) } }
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
    return TracedOperation(statements: traces.withLock { $0 }, inputs: inputs)
}

/// One pgbench run's summary.
public struct PgbenchResult: Sendable, Codable, Equatable {
    public let tps: Double
    public let transactions: Int
    public let failedTransactions: Int
    /// Measured per transaction (pgbench measures latencies when `-P` is given; without it,
    /// "latency average" is only the run time × clients / transactions).
    public let latencyAverageMilliseconds: Double?
    public var latencyStddevMilliseconds: Double? = nil
    /// pgbench's own CPU time (user + system) over the run: the client side of the ceiling.
    public var cpuSeconds: Double? = nil
    /// Clients pgbench ran (a pooled cell's ceiling runs as many as the pool has sessions).
    public var clients: Int? = nil
    /// pgbench's context switches over the run (its threads multiplex every connection).
    public var contextSwitches: Int? = nil

    /// pgbench's CPU time per transaction, in seconds.
    public var cpuPerTransaction: Double? { cpuSeconds.map { $0 / Double(max(1, transactions)) } }
}

/// How long pgbench runs: a number of transactions per client, or whole seconds (`-T`).
public enum PgbenchLength: Sendable {
    case transactionsPerClient(Int)
    case seconds(Int)
}

/// Runs pgbench with a derived script: the same clients as the cell, the prepared protocol, on
/// the database the cell was seeded into. A cell runs it for the same whole seconds as the
/// LockProof run (`-T`), so both clocks run from the start (connections made) to the last client's
/// end; `-P` (its interval longer than the run, so it prints nothing) makes pgbench measure every
/// transaction's latency.
func runPgbench(
    _ pgbench: String, script: PgbenchScript, clients: Int, length: PgbenchLength, databaseURL: String,
    directory: String
) throws -> PgbenchResult {
    let path = "\(directory)/ceiling-\(UUID().uuidString.prefix(8)).sql"
    try script.text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    var arguments = [
        "-n", "-M", "prepared", "-f", path, "-c", String(clients), "-j", String(min(clients, 2)),
        "-D", "clients=\(clients)", "-D", "n=0",
    ]
    let timeout: Double
    switch length {
    case .transactionsPerClient(let count):
        arguments += ["-t", String(max(1, count))]
        timeout = 300
    case .seconds(let seconds):
        arguments += ["-T", String(max(1, seconds)), "-P", String(max(1, seconds) * 100)]
        timeout = Double(seconds) + 120
    }
    for (name, value) in script.definitions.sorted(by: { $0.key < $1.key }) { arguments += ["-D", "\(name)=\(value)"] }
    // Never the password on pgbench's command line (every local user reads /proc/PID/cmdline):
    // the settings there, the password in its environment.
    let target = try PostgresTarget(conninfo: databaseURL)
    guard !target.hasKeyPassphrase else {
        throw BenchError("pgbench would need sslpassword on its command line, where any local user can read it; use a client key without a passphrase")
    }
    let child = target.forChildProcess
    arguments.append(child.conninfo)
    let before = childrenUsage()
    let (status, output) = try runProgram(
        pgbench, arguments, timeoutSeconds: timeout,
        environment: ProcessInfo.processInfo.environment.merging(child.environment) { $1 })
    let after = childrenUsage()
    guard status == 0 else {
        // pgbench's output names the failing statement; it has no password to print (it never
        // saw one but in its environment), and anything libpq might echo is scrubbed all the same.
        let tail = output.split(separator: "\n").suffix(4).joined(separator: " | ")
        throw BenchError("pgbench exited with status \(status): \(target.scrub(tail))")
    }
    var result = try parsePgbenchOutput(output)
    let cpu = after.cpuSeconds - before.cpuSeconds
    result.cpuSeconds = cpu > 0 ? cpu : nil
    result.contextSwitches = after.contextSwitches - before.contextSwitches
    result.clients = clients
    return result
}

/// CPU time (user + system) and context switches of this process's children that have ended and
/// been waited for.
func childrenUsage() -> (cpuSeconds: Double, contextSwitches: Int) {
    var usage = rusage()
    guard getrusage(RUSAGE_CHILDREN.rawValue, &usage) == 0 else { return (0, 0) }
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return (seconds(usage.ru_utime) + seconds(usage.ru_stime), usage.ru_nvcsw + usage.ru_nivcsw)
}

/// Reads tps, transactions and failures from pgbench's summary block.
public func parsePgbenchOutput(_ output: String) throws -> PgbenchResult {
    var tps: Double?
    var transactions = 0
    var failed = 0
    var latency: Double?
    var stddev: Double?
    for line in output.split(separator: "\n").map(String.init) {
        if line.hasPrefix("tps = "), tps == nil || line.contains("without initial connection time") {
            tps = Double(line.dropFirst(6).split(separator: " ").first ?? "")
        } else if line.hasPrefix("number of transactions actually processed:") {
            transactions = Int(line.split(separator: ":")[1].split(separator: "/")[0].trimmingCharacters(in: .whitespaces)) ?? 0
        } else if line.hasPrefix("number of failed transactions:") {
            failed = Int(line.split(separator: ":")[1].split(separator: "(")[0].trimmingCharacters(in: .whitespaces)) ?? 0
        } else if line.hasPrefix("latency average = ") {
            latency = Double(line.dropFirst("latency average = ".count).split(separator: " ").first ?? "")
        } else if line.hasPrefix("latency stddev = ") {
            stddev = Double(line.dropFirst("latency stddev = ".count).split(separator: " ").first ?? "")
        }
    }
    guard let tps, transactions > 0 else {
        throw BenchError("pgbench printed no tps or processed no transaction: \(output.suffix(300))")
    }
    return PgbenchResult(
        tps: tps, transactions: transactions, failedTransactions: failed, latencyAverageMilliseconds: latency,
        latencyStddevMilliseconds: stddev)
}
