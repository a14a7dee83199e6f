import LockProofConfiguration
import Foundation
import LockProofCommerce
import Synchronization

/// A suite: every run of a list of scenarios, as `lockproof run` and `lockproof verify` ask for it.
///
/// The orchestration around `ScenarioRunner.run`, out of the CLI: the preflight (the report folder,
/// the database claim, the connection budget, the servers faults may strike, the shared services,
/// the live metrics), SIGINT/SIGTERM, the suite loop with --fail-fast, each NAME.json, then
/// junit.xml and report.html. The CLI parses its options into `SuiteOptions`, prints what
/// `SuiteOutput` hands it, and turns the outcome into an exit status.
///
/// Two kinds of refusal, both before the first operation: `SuiteBadInput` (nothing written) and
/// `SuiteRefused` (what the servers refuse: with a report folder every run is reported in it as an
/// error that did not run, so that a CI job reading JUnit sees the reason rather than no result).
public final class SuiteRunner {
    public let configuration: ServerConfiguration
    public let options: SuiteOptions
    /// The live metrics (the CLI's Prometheus endpoint), if any.
    public let metrics: (any SuiteMetrics)?
    /// Blocks until SIGINT or SIGTERM arrives and returns its number and name; nil: no signal handling.
    /// The CLI blocks the signals before any thread starts (threads inherit the mask).
    public let waitForSignal: (@Sendable () -> (number: Int32, name: String))?

    public init(
        configuration: ServerConfiguration, options: SuiteOptions, metrics: (any SuiteMetrics)? = nil,
        waitForSignal: (@Sendable () -> (number: Int32, name: String))? = nil
    ) {
        self.configuration = configuration
        self.options = options
        self.metrics = metrics
        self.waitForSignal = waitForSignal
    }

    /// Runs every run of `scenarios` in order and reports them; `output` gets each result as it is
    /// judged and the whole list before junit.xml and report.html are written (a report that cannot
    /// be written loses no verdict).
    public func run(_ scenarios: [Scenario], output: SuiteOutput) throws -> SuiteOutcome {
        let runs = scenarios.flatMap(\.runs)
        // Bad input is refused before anything is written; what the servers refuse (below) is
        // refused before the first operation, and reported as such with a report folder. An empty
        // database gets LockProof's schema when it is claimed, before the later refusals.
        let reportURL = try Self.reportFolder(options.reportDirectory)
        // The database is this process's until it exits (see DatabaseClaim): refused, or waited
        // for, when it is not LockProof's or another run holds it.
        let refused = { (message: String) in Self.refusal(message, runs: runs, reportURL: reportURL) }
        let claim: DatabaseClaim
        do {
            claim = try ScenarioRunner.claimDatabase(
                configuration, command: options.command, waitSeconds: options.waitForDatabaseSeconds, waiting: options.waitingForDatabase)
        } catch {
            throw refused("\(error)")
        }
        defer { claim.release() }
        do {
            // The live metrics may hold sessions of their own (the pending-compensations poller).
            // Through a target the virtual users hold HTTP connections, no session of LockProof's:
            // the budget is the service's business (its refusals are in the history).
            let inProcess = runs.filter { options.target(for: $0) == nil }
            if !inProcess.isEmpty {
                try ConnectionBudget.check(inProcess, configuration: configuration, processSessions: metrics?.databaseSessions ?? 0)
            }
        } catch {
            throw refused("\(error)")
        }
        // Faults that strike servers: only into the throwaway servers the environment names.
        // Checked once here for every run; the runner uses what was found.
        var managedServers: [String: ManagedServers?] = [:]
        for scenario in scenarios {
            let servers: ManagedServers?
            do {
                // Through a target, pg-terminate cuts the target database's sessions (`TargetFaults.swift`).
                let targetDatabase = try options.target(for: scenario).map { try $0.databaseURL() }
                servers = try ManagedServers.check(configuration, faults: scenario.faults.map(\.kind), targetDatabaseURL: targetDatabase)
            } catch {
                throw refused("\(scenario.file): \(error)")
            }
            for run in scenario.runs { managedServers[run.name] = .some(servers) }
        }
        let shared: SharedServices
        do { shared = try SharedServices(configuration: configuration) } catch { throw refused("\(error)") }
        defer { shared.stop() }
        if let metrics {
            do { try metrics.start(configuration: configuration) } catch { throw refused("\(error)") }
        }
        defer { metrics?.stop() }
        if let reportURL {
            do {
                try FileManager.default.createDirectory(at: reportURL, withIntermediateDirectories: true)
            } catch {
                throw SuiteBadInput(message: "--report-dir \(reportURL.path): \(error.localizedDescription)")
            }
        }

        let runner = ScenarioRunner(configuration: configuration, shared: shared, progress: ProgressReporter(enabled: !options.quiet))
        runner.historyDirectory = reportURL
        runner.claim = claim
        runner.managedServers = managedServers
        metrics?.attach(to: runner)
        // SIGINT/SIGTERM stop the running scenario; its result and everything before it are reported.
        let received = ReceivedSignal()
        if let waitForSignal {
            let stop = runner.stop
            let watcher = Thread {
                let signal = waitForSignal()
                received.set(signal.number)
                Self.note("lockproof: \(signal.name) received, stopping the running scenario")
                stop.request("interrupted by \(signal.name)")
            }
            watcher.name = "lockproof-signals"
            watcher.start()
        }
        let interrupted = { received.number != nil }

        metrics?.beforeFirstOperation(stopped: interrupted)
        let results = runSuite(scenarios, runner: runner, reportURL: reportURL, output: output)
        // The summary before junit.xml and report.html: a report that cannot be written loses no verdict.
        try output.suiteFinished(results, reportURL)
        if let reportURL {
            try Self.writeRunReports(results, to: reportURL)
            output.reportsWritten(reportURL)
        }
        fflush(nil)
        if !interrupted() { metrics?.afterLastOperation(stopped: interrupted) }
        return SuiteOutcome(results: results, signal: received.number)
    }

    /// The suite loop: each run in order, its NAME.json as soon as it is judged; after a stop
    /// request, a --fail-fast failure or clients left running, the rest are reported as not run.
    private func runSuite(_ scenarios: [Scenario], runner: ScenarioRunner, reportURL: URL?, output: SuiteOutput) -> [ScenarioResult] {
        let stop = runner.stop
        var results: [ScenarioResult] = []
        var skipReason: String?
        for scenario in scenarios {
            for run in scenario.runs {
                if let skipReason {
                    // Never silently dropped: a run that did not happen is an error in every output.
                    let notRun = ScenarioResult.error(run, "not run: \(skipReason)", interrupted: stop.reason != nil)
                    results.append(notRun)
                    if let reportURL { try? ReportWriter.write(notRun, to: reportURL) }
                    continue
                }
                var result: ScenarioResult
                // Its own `target:`, or --target, or in process.
                runner.target = options.target(for: run)
                do {
                    result = try runner.run(run)
                } catch {
                    result = .error(run, "aborted: \(error)")
                }
                if let reportURL {
                    do {
                        try ReportWriter.write(result, to: reportURL)
                    } catch {
                        result = .error(run, "its report could not be written to \(reportURL.path): \(error.localizedDescription)")
                    }
                }
                results.append(result)
                metrics?.finished(result)
                output.scenarioFinished(result)
                if let error = result.runError, !result.errorExpected {
                    Self.note("lockproof: error: \(run.name): \(error)")
                }
                if let reason = stop.reason {
                    skipReason = "the run was \(reason)"
                } else if options.failFast && !result.passed {
                    skipReason = "--fail-fast: \(run.name) failed"
                    let ran = Set(results.map(\.scenario.name))
                    let skipped = scenarios.flatMap(\.runs).map(\.name).filter { !ran.contains($0) }
                    Self.note(
                        "lockproof: --fail-fast: stopped after \(run.name) failed; not run: \(skipped.isEmpty ? "none" : skipped.joined(separator: ", "))")
                } else if result.clientsAbandoned {
                    // Clients still running would disturb whatever runs next.
                    skipReason = "\(run.name) left clients running"
                }
            }
        }
        return results
    }

    /// The report folder, checked before anything is written: not a link, a writable folder or
    /// one that can be made in an existing folder. `run` checks it first; a caller may check it
    /// earlier (the CLI does, before reading the server configuration, as it always has).
    public static func reportFolder(_ directory: String?) throws -> URL? {
        guard let directory else { return nil }
        if let problem = ReportFile.linkedFolderProblem(directory) { throw SuiteBadInput(message: "--report-dir \(problem)") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw SuiteBadInput(message: "--report-dir \(directory): exists and is not a folder") }
            guard FileManager.default.isWritableFile(atPath: directory) else {
                throw SuiteBadInput(message: "--report-dir \(directory): not writable")
            }
        } else {
            let parent = (directory as NSString).deletingLastPathComponent
            let existingParent = parent.isEmpty ? "." : parent
            var parentIsDirectory: ObjCBool = false
            guard !FileManager.default.fileExists(atPath: existingParent, isDirectory: &parentIsDirectory) || parentIsDirectory.boolValue
            else { throw SuiteBadInput(message: "--report-dir \(directory): \(existingParent) is not a folder") }
        }
        return URL(fileURLWithPath: directory, isDirectory: true)
    }

    /// A suite refused after its input was read but before any scenario ran (a server unreachable,
    /// more connections than the server has left, faults the servers cannot take): with a report
    /// folder every run is reported as an error that did not run (NAME.json with status error, an
    /// <error> in junit.xml, report.html).
    static func refusal(_ message: String, runs: [Scenario], reportURL: URL?) -> SuiteRefused {
        guard let reportURL else { return SuiteRefused(message: message) }
        let results = runs.map { ScenarioResult.error($0, "not run: refused before anything ran: \(message)") }
        do {
            try FileManager.default.createDirectory(at: reportURL, withIntermediateDirectories: true)
            for result in results { try ReportWriter.write(result, to: reportURL) }
            try writeRunReports(results, to: reportURL)
        } catch {
            note("lockproof: error: the refusal could not be reported in \(reportURL.path): \(error)")
        }
        return SuiteRefused(message: message)
    }

    /// junit.xml and report.html for `results`, after every NAME.json.
    public static func writeRunReports(_ results: [ScenarioResult], to reportURL: URL) throws {
        try ReportFile.write(ReportWriter.junit(results), named: "junit.xml", in: reportURL)
        // report.html: verdicts plus a timeline around every caught violation's first example.
        try RunReportHTML.write(results, to: reportURL)
    }

    private static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// The signal that stopped the suite, if one did.
private final class ReceivedSignal: Sendable {
    private let stored = Mutex<Int32?>(nil)
    func set(_ number: Int32) { stored.withLock { $0 = number } }
    var number: Int32? { stored.withLock { $0 } }
}

/// What the CLI's options ask of a suite.
public struct SuiteOptions: Sendable {
    /// Where NAME.json, NAME.history.jsonl, junit.xml and report.html go; nil: no report files.
    public var reportDirectory: String?
    /// Stop at the first run that fails; the rest are reported as not run.
    public var failFast: Bool
    /// No progress line.
    public var quiet: Bool
    /// How long to wait for another run holding the database (0: refused at once).
    public var waitForDatabaseSeconds: Double
    /// Told once when the suite starts waiting for the database.
    public var waitingForDatabase: (@Sendable (String) -> Void)?
    /// The command named in the database claim.
    public var command: String
    /// Run every scenario through this target's API and judge it by its database (issue 18); nil: in process.
    public var target: Target? = nil
    /// The targets scenarios name themselves (`target:`), by scenario file; they come before
    /// `target` (the CLI refuses a scenario's `target:` that differs from --target).
    public var scenarioTargets: [String: Target] = [:]

    /// The target `scenario` runs through: its own `target:`, else `target`; nil: in process.
    public func target(for scenario: Scenario) -> Target? {
        scenarioTargets[scenario.file] ?? target
    }

    public init(
        reportDirectory: String? = nil, failFast: Bool = false, quiet: Bool = false, waitForDatabaseSeconds: Double = 0,
        waitingForDatabase: (@Sendable (String) -> Void)? = nil, command: String = "run", target: Target? = nil,
        scenarioTargets: [String: Target] = [:]
    ) {
        self.target = target
        self.scenarioTargets = scenarioTargets
        self.reportDirectory = reportDirectory
        self.failFast = failFast
        self.quiet = quiet
        self.waitForDatabaseSeconds = waitForDatabaseSeconds
        self.waitingForDatabase = waitingForDatabase
        self.command = command
    }
}

/// Where a suite's results go as they come: the CLI prints them.
public struct SuiteOutput {
    /// Each run's result once it is judged and its NAME.json written.
    public var scenarioFinished: (ScenarioResult) -> Void
    /// Every result (and the report folder), before junit.xml and report.html are written.
    public var suiteFinished: ([ScenarioResult], URL?) throws -> Void
    /// After junit.xml and report.html are written.
    public var reportsWritten: (URL) -> Void

    public init(
        scenarioFinished: @escaping (ScenarioResult) -> Void, suiteFinished: @escaping ([ScenarioResult], URL?) throws -> Void,
        reportsWritten: @escaping (URL) -> Void
    ) {
        self.scenarioFinished = scenarioFinished
        self.suiteFinished = suiteFinished
        self.reportsWritten = reportsWritten
    }
}

/// How a suite ended.
public struct SuiteOutcome: Sendable {
    public let results: [ScenarioResult]
    /// The signal (SIGINT, SIGTERM) that stopped it, if one did.
    public let signal: Int32?
    public var passed: Bool { results.allSatisfy(\.passed) }
}

/// The live metrics of a suite. The Prometheus endpoint lives in the metrics layer, which the
/// scenario layer does not import (lockproof-fuzz links neither Prometheus nor libmicrohttpd): the
/// CLI provides it through this.
public protocol SuiteMetrics: AnyObject {
    /// Database sessions it holds while the suite runs (counted in the connection budget).
    var databaseSessions: Int { get }
    /// Starts serving; an error (its description says what failed) refuses the suite.
    func start(configuration: ServerConfiguration) throws
    /// Takes every event and operation of the runs.
    func attach(to runner: ScenarioRunner)
    /// Before the first operation (e.g. waits, bounded, for a scrape that reads every series at 0).
    func beforeFirstOperation(stopped: @escaping () -> Bool)
    /// After each run is judged.
    func finished(_ result: ScenarioResult)
    /// After the last run, unless a signal stopped the suite (e.g. waits for a scrape of the final values).
    func afterLastOperation(stopped: @escaping () -> Bool)
    /// Stops serving; called once, whatever happened.
    func stop()
}

/// Bad input found before anything was written (exit status 2).
public struct SuiteBadInput: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Refused by the servers before anything ran (exit status 2); already reported in the report folder.
public struct SuiteRefused: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
