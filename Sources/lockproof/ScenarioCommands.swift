import LockProofConfiguration
import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofScenario

/// `lockproof run FILE...`: run scenarios and judge them.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files against PostgreSQL and Redis and judge them by their checkers and thresholds.",
        discussion: """
            Each scenario runs on a clean schema (every LockProof table is emptied) with its seed \
            data; its virtual users start at a barrier, every operation is recorded, and the \
            checkers read the history and the final state. Exit status: 0 when every scenario \
            passed (a negative control passes when its violation was caught), 1 when a check or \
            threshold failed, a negative control went undetected, a run performed no operation or \
            a run broke (ERROR: a client could not connect, a hang, a lost server), 2 on bad input \
            (nothing run, nothing written) or a refusal before anything ran: an unreachable \
            server, a database that is not LockProof's (no lockproof_schema marker) or one another \
            run or a serve instance holds (see --wait-for-database), more connections than the \
            server has left, faults the servers cannot take (nothing run; with --report-dir every \
            scenario is reported as an error that did not run, in NAME.json and junit.xml), \
            130/143 when SIGINT/SIGTERM stopped it (the running scenario is reported as \
            interrupted, junit.xml is written). Report files replace whatever is at their names, \
            a symbolic link included (never written through); a --report-dir that is itself a \
            link is refused. With --json the summary is one JSON document on stdout.

            Example:
              lockproof run Scenarios/charge-balance-seed.yaml --report-dir .run/reports
            """)

    @Argument(help: ArgumentHelp("Scenario files (YAML).", valueName: "file"))
    var files: [String]

    @OptionGroup var options: ScenarioRunOptions

    func run() throws {
        for file in files {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
                throw startupFailure("\(file) is a folder; `lockproof run` takes scenario files: use `lockproof verify \(file)` to run every scenario in it")
            }
        }
        try runScenarios(files: files, options: options)
    }
}

/// `lockproof verify [DIR]`: every scenario in a folder.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run every scenario in a folder (Scenarios/ by default) and print the verdict table.",
        discussion: """
            Exit status as for `run`: 0 all passed, 1 a failure or error, 2 bad input or a \
            refusal before anything ran (an unreachable server, a database that is not \
            LockProof's or that another run or a serve instance holds — see --wait-for-database —, \
            too many connections; reported as errors with --report-dir), 130/143 interrupted. \
            With --fail-fast the run stops at the first \
            failing scenario (exit 1), as the mutant catalog (`make mutants`) uses it; the rest \
            are listed as not run. With --json the summary is one JSON document on stdout.

            Example:
              lockproof verify Scenarios --report-dir .run/reports --json > summary.json
              SHOP_URL=http://127.0.0.1:35510 SHOP_DATABASE_URL=postgresql://… \\
                lockproof verify --target targets/shop.yaml Scenarios
            """)

    @Argument(help: ArgumentHelp("Folder of scenario files (*.yaml, *.yml), or scenario files.", valueName: "dir"))
    var directories: [String] = ["Scenarios"]

    @OptionGroup var options: ScenarioRunOptions

    func run() throws {
        var files: [String] = []
        for path in directories {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            } else {
                files += try scenarioFiles(in: path)
            }
        }
        try runScenarios(files: files, options: options)
    }
}

/// `lockproof check FILE...`: validate only.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate scenario files without running anything.",
        discussion: """
            Reports every problem as FILE:LINE:COLUMN with what was found and what is expected: \
            unknown keys, wrong types, unknown case or strategy, thresholds on metrics that do not \
            exist or cannot have samples in the scenario's case, malformed expressions. Exit status \
            0 when every file is valid, 2 otherwise. A directory stands for its scenario files. A \
            percentile threshold on latency that the scenario's iterations cannot feed (a p(99) \
            needs 200 operations) is warned about on stderr; the file is valid all the same.

            Example:
              lockproof check Scenarios
            """)

    @Argument(help: ArgumentHelp("Scenario files or folders.", valueName: "file"))
    var files: [String]

    func run() throws {
        var paths: [String] = []
        for path in files {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                paths += try scenarioFiles(in: path)
            } else {
                paths.append(path)
            }
        }
        let scenarios = try loadScenarios(paths)
        for scenario in scenarios {
            let runs = scenario.workload.virtualUsers.map(String.init).joined(separator: ", ")
            print("\(scenario.file): ok (\(scenario.name): \(scenario.caseLabel), strategy \(scenario.strategyLabel), expect \(scenario.expect.rawValue), virtual users \(runs), \(scenario.thresholds.count) thresholds\(scenario.target.map { ", through target \($0.path)" } ?? ""))")
            for warning in scenario.shortRunWarnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
        }
    }
}

struct ScenarioRunOptions: ParsableArguments {
    @Option(
        name: .customLong("target"),
        help: ArgumentHelp(
            "Run the scenarios through this target file's HTTP API and judge them by its own database (targets/README.md); without it, a scenario with `target:` runs through that file, and one naming another file than --target is refused (exit 2). A scenario whose operations the target lacks, or that uses an in-process fault (client-pause, crash-after-deduct, …) or the simulated gateway, is refused with the reason, exit 2, nothing written; a checker whose state the target does not map is reported as not checked.",
            valueName: "file"))
    var target: String?

    @Option(
        name: .customLong("client-engine"),
        help: ArgumentHelp(
            "With --target: how the virtual users' requests are driven. events (default): one loop thread drives every user's non-blocking keep-alive connection with epoll; threads: one thread per virtual user blocking on its connection (to compare). Any other value is exit 2.",
            valueName: "events|threads"))
    var clientEngine: String = Target.ClientEngine.events.rawValue

    @Option(
        name: .customLong("report-dir"),
        help: ArgumentHelp("Write NAME.json, NAME.history.jsonl per scenario and junit.xml here.", valueName: "dir"))
    var reportDirectory: String?

    @Option(
        name: .customLong("metrics-address"),
        help: ArgumentHelp(
            "Serve the run's Prometheus metrics on host:port while it runs (by convention 127.0.0.1:9465, job lockproof-runs in Dashboards/prometheus.yml; serve uses 9464).",
            valueName: "host:port"))
    var metricsAddress: String?

    @Option(
        name: .customLong("metrics-first-scrape-wait"), parsing: .unconditional,
        help: ArgumentHelp(
            "With --metrics-address: seconds to wait before the first operation for a scrape that reads every series at 0, \(SecondsBounds.describe(SecondsBounds.scrapeWait)); 0 does not wait.",
            valueName: "seconds"))
    var metricsFirstScrapeWait: Double = 15

    @Option(
        name: .customLong("metrics-linger"), parsing: .unconditional,
        help: ArgumentHelp(
            "With --metrics-address: seconds at most to stay after the last operation until a scrape has read the final values, \(SecondsBounds.describe(SecondsBounds.scrapeWait)). Default: twice the scrape interval observed plus 1 s (1 to 120 s), 0 when nothing scraped.",
            valueName: "seconds"))
    var metricsLinger: Double?

    @Option(
        name: .customLong("pending-interval"), parsing: .unconditional,
        help: ArgumentHelp(
            "With --metrics-address: seconds between counts of pending compensations in the database (lockproof_compensations_pending), as serve does, \(SecondsBounds.describe(SecondsBounds.pollInterval)).",
            valueName: "seconds"))
    var pendingInterval: Double = 1

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Print the summary as one JSON document on stdout (every scenario's NAME.json and the totals) instead of text; progress and errors stay on stderr.")
    var json = false

    @Flag(name: .customLong("no-color"), help: "No colour (also when NO_COLOR is set, or stdout is not a terminal; CLICOLOR_FORCE=1 forces it).")
    var noColor = false

    @Flag(
        name: .customLong("fail-fast"),
        help: "Stop at the first scenario that fails; the rest are not run and are listed. Exit status 1, as for any failure.")
    var failFast = false

    @OptionGroup var servers: ServerOptions

    @OptionGroup var database: DatabaseWaitOptions

    func validate() throws {
        guard Target.ClientEngine(rawValue: clientEngine) != nil else {
            throw ValidationError(
                "--client-engine: found \(clientEngine); expected one of \(Target.ClientEngine.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try checkBounds(metricsFirstScrapeWait, option: "--metrics-first-scrape-wait", range: SecondsBounds.scrapeWait)
        if let metricsLinger { try checkBounds(metricsLinger, option: "--metrics-linger", range: SecondsBounds.scrapeWait) }
        try checkBounds(pendingInterval, option: "--pending-interval", range: SecondsBounds.pollInterval)
    }
}

/// The scenario files of a folder, sorted by name.
func scenarioFiles(in directory: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw startupFailure("\(directory): not a folder of scenario files")
    }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        .map { (directory as NSString).appendingPathComponent($0) }
    guard !files.isEmpty else { throw startupFailure("\(directory): no scenario files (*.yaml, *.yml)") }
    return files
}

/// Loads and validates every file, reporting every problem of every file before giving up.
func loadScenarios(_ paths: [String]) throws -> [Scenario] {
    var scenarios: [Scenario] = []
    var problems: [String] = []
    for path in paths {
        do {
            scenarios.append(try ScenarioParser.load(path: path))
        } catch let error as ScenarioValidationError {
            problems += error.problems.map(\.description)
        }
    }
    problems += ReportWriter.reportFileProblems(scenarios.flatMap { scenario in scenario.runs.map { ($0.name, scenario.file) } })
    guard problems.isEmpty else {
        FileHandle.standardError.write(Data((problems.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(startupFailureExitCode)
    }
    return scenarios
}

/// `--target FILE`: the target, validated, with every scenario fitted to it before anything runs:
/// a file with errors, or a scenario the target cannot run (each reason named), is exit 2.
/// `via`: how the target was named (`--target`, or `target:` in the scenarios).
func loadTarget(_ path: String, scenarios: [Scenario], configuration: ServerConfiguration, via: String = "--target") throws -> Target {
    let target: Target
    do {
        target = try TargetParser.load(path: path)
    } catch let error as ScenarioValidationError {
        FileHandle.standardError.write(Data((error.problems.map(\.description).joined(separator: "\n") + "\n").utf8))
        throw ExitCode(startupFailureExitCode)
    }
    var refusals: [String] = []
    for scenario in scenarios {
        // The in-process fault hooks are refused by `fit`; server and instance faults strike only
        // what LockProof started (`faultRefusals`).
        let reasons = target.fit(scenario).refusals + target.faultRefusals(scenario, configuration: configuration)
        refusals += reasons.map { "\(scenario.file): refused through \(via) \(path): \($0)" }
    }
    do {
        _ = try target.resolvedBaseURLs()
        _ = try target.databaseURL()
    } catch {
        refusals.append("\(error)")
    }
    guard refusals.isEmpty else {
        FileHandle.standardError.write(Data((refusals.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(startupFailureExitCode)
    }
    return target
}

/// The targets the scenarios run through: --target, or else each scenario's own `target:` (by
/// scenario file; a scenario with neither runs in process). A scenario whose `target:` names
/// another file than --target is refused, exit 2, nothing written: which one was meant cannot be
/// guessed (the same file named both ways is no conflict).
func loadTargets(
    _ option: String?, scenarios: [Scenario], configuration: ServerConfiguration
) throws -> (target: Target?, byScenarioFile: [String: Target]) {
    if let option {
        let conflicts = scenarios.compactMap { scenario -> String? in
            guard let reference = scenario.target, !reference.names(option) else { return nil }
            return "\(scenario.file):\(reference.line):\(reference.column): error: target: found '\(reference.written)' (\(reference.path)), and --target names \(option); expected the same file, or only one of them (without --target each scenario runs through its own target:)"
        }
        guard conflicts.isEmpty else {
            FileHandle.standardError.write(Data((conflicts.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(startupFailureExitCode)
        }
        return (try loadTarget(option, scenarios: scenarios, configuration: configuration), [:])
    }
    var byFile: [String: Target] = [:]
    var paths: [String] = []
    for scenario in scenarios { if let path = scenario.target?.path, !paths.contains(path) { paths.append(path) } }
    for path in paths {
        let named = scenarios.filter { $0.target?.path == path }
        let target = try loadTarget(path, scenarios: named, configuration: configuration, via: "target:")
        for scenario in named { byFile[scenario.file] = target }
    }
    return (nil, byFile)
}

func runScenarios(files: [String], options: ScenarioRunOptions) throws {
    // Before any thread starts: the signal mask is inherited (see TerminationSignals).
    let signals = TerminationSignals()
    let scenarios = try loadScenarios(files)
    var targets = try loadTargets(options.target, scenarios: scenarios, configuration: try options.servers.configuration())
    // The engine option applies to every target of the run, named by --target or by a scenario's target:.
    let engine = Target.ClientEngine(rawValue: options.clientEngine) ?? .events
    targets.target?.clientEngine = engine
    for file in Array(targets.byScenarioFile.keys) { targets.byScenarioFile[file]?.clientEngine = engine }
    let style = TerminalStyle.decide(
        noColorFlag: options.noColor, environment: ProcessInfo.processInfo.environment, stdoutIsTerminal: isatty(STDOUT_FILENO) == 1)
    var metrics: RunMetricsEndpoint?
    if let text = options.metricsAddress {
        do {
            metrics = RunMetricsEndpoint(
                address: try HTTPBindAddress(parsing: text), option: text, options: options)
        } catch {
            throw startupFailure("--metrics-address \(text): \(error)")
        }
    }
    do { _ = try SuiteRunner.reportFolder(options.reportDirectory) } catch { throw startupFailure("\(error)") }
    let configuration = try options.servers.configuration()
    let suite = SuiteRunner(
        configuration: configuration,
        options: SuiteOptions(
            reportDirectory: options.reportDirectory, failFast: options.failFast, quiet: options.quiet,
            waitForDatabaseSeconds: options.database.seconds, waitingForDatabase: DatabaseWaitOptions.announce, command: "run",
            target: targets.target, scenarioTargets: targets.byScenarioFile),
        metrics: metrics,
        waitForSignal: {
            let number = signals.wait()
            return (number, TerminationSignals.name(number))
        })
    let output = SuiteOutput(
        scenarioFinished: { result in
            if !options.json {
                print(ReportWriter.summary(result, style: style))
                print("")
                fflush(nil)
            }
        },
        suiteFinished: { results, reportURL in
            print(options.json ? try RunSummaryDocument(results, reportDir: reportURL?.path).json() : ReportWriter.verdictTable(results, style: style))
        },
        reportsWritten: { reportURL in
            if !options.json { print("reports: \(reportURL.path)") }
        })
    let outcome: SuiteOutcome
    do {
        outcome = try suite.run(scenarios, output: output)
    } catch let error as SuiteBadInput {
        throw startupFailure(error.message)
    } catch let error as SuiteRefused {
        throw startupFailure(error.message)
    }
    if let number = outcome.signal {
        // The shell's convention for a process ended by a signal, after everything was written.
        throw ExitCode(128 + number)
    }
    if !outcome.passed { throw ExitCode(1) }
}
