import ArgumentParser
import Foundation
import LockProofBench
import LockProofCommerce
import LockProofConfiguration
import LockProofScenario

/// `lockproof bench`: the benchmark matrix against pgbench's ceiling, with reports and a verdict on
/// every claim of the seed. The work is LockProofBench's; this only reads arguments and writes files.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark every strategy against the database's own ceiling (pgbench) and judge the seed's claims.",
        discussion: """
            Runs each case × strategy × client count × contention (one hot row or spread over many) \
            with the scenario runner and its checkers, several repetitions interleaved; in the same \
            run, pgbench executes exactly the statements of each strategy's transaction (traced from \
            the core) on the same seed with the same clients (-M prepared). Reports open with a \
            decision table per case (operations/s, p99, failed operations and the invariant's \
            verdict per strategy, ranked only where it kept its invariant without failing an \
            operation) and a "pick X when ..." paragraph; then throughput as a ratio to that \
            ceiling, latency percentiles, retries, lock waits, failures and the checkers' verdict \
            per cell, the Redis lock's cost against redis-benchmark, and a verdict \
            on each of the seed's ten claims. Empties and reseeds the database named by \
            LOCKPROOF_DATABASE_URL for every run, holding it for the whole benchmark: a database \
            that is not LockProof's, or that another run or a serve instance holds, is refused \
            with exit 2 (see --wait-for-database). Exits 1 when anything could not be measured, a claim \
            left "not measured" by --cases or --strategies included.

            Example: settle "Redis lock, optimistic or pessimistic?" for charges in about two minutes
            (exits 1: claims 4 and 6-10 need the other cases and are not measured):
              lockproof bench --quick --cases charge-balance --strategies seed,optimistic-retry,pessimistic \\
                --clients 1,16 --repetitions 2 --seconds 1 --report-dir bench-out
            """)

    @Flag(help: "The quick preset (clients 1 and 64, pooled cells of 64 and 128 clients on 16 sessions; 2 repetitions of 1 s; ceiling once; no negative controls): under 5 minutes on 2 cores.")
    var quick = false

    @Option(help: "Preset: quick, or full (the default: clients 1, 4, 16, 64, 128; 3 repetitions of 3 s, each with its ceiling).")
    var preset: String?

    @Option(help: ArgumentHelp("Write bench.json, bench.csv, bench.md and bench.html here.", valueName: "dir"))
    var reportDir: String?

    @Option(help: ArgumentHelp("Only these cases (comma-separated).", valueName: "cases"))
    var cases: String?

    @Option(help: ArgumentHelp(
        "Only these strategies (comma-separated), in every selected case that has them; a deliberately broken one named here is measured too.",
        valueName: "strategies"))
    var strategies: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Override the preset's client counts (comma-separated, each 1 to 300).", valueName: "counts"))
    var clients: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Override the preset's repetitions, 1 to 100.", valueName: "n"))
    var repetitions: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Override the preset's length of a run in whole seconds, 1 to 3600 (LockProof's and pgbench's -T alike).", valueName: "n"))
    var seconds: Int?

    @OptionGroup var database: DatabaseWaitOptions

    func validate() throws {
        if let preset, BenchPreset.named(preset) == nil {
            throw ValidationError("--preset: found '\(preset)'; expected quick or full")
        }
        if quick, let preset, preset != "quick" { throw ValidationError("--quick and --preset \(preset) exclude each other") }
        if let cases {
            for name in cases.split(separator: ",") where CaseName(rawValue: String(name)) == nil {
                throw ValidationError(
                    "--cases: found '\(name)'; expected some of \(CaseName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let strategies {
            let known = Set(selectedCases.flatMap(\.strategies))
            for name in strategies.split(separator: ",", omittingEmptySubsequences: false) where !known.contains(String(name)) {
                throw ValidationError(
                    "--strategies: found '\(name)'; expected some of \(known.sorted().joined(separator: ", "))")
            }
        }
        if let clients {
            for count in clients.split(separator: ",") where (Int(count) ?? 0) < 1 || (Int(count) ?? 0) > 300 {
                throw ValidationError("--clients: found '\(count)'; expected whole numbers from 1 to 300")
            }
        }
        if let repetitions { try checkBounds(repetitions, option: "--repetitions", range: 1...100) }
        if let seconds { try checkBounds(seconds, option: "--seconds", range: 1...3_600) }
    }

    /// The cases `--cases` selects (all without it).
    var selectedCases: [BenchCase] {
        cases.map { names in
            BenchCase.all.filter { names.split(separator: ",").map(String.init).contains($0.caseName.rawValue) }
        } ?? BenchCase.all
    }

    /// The preset with the options' overrides, each named in the reports' header.
    var plan: BenchPreset {
        var chosen = BenchPreset.named(preset ?? (quick ? "quick" : "full"))!
        if let cases { chosen.overrides.append("--cases \(cases)") }
        if let strategies {
            chosen.strategies = strategies.split(separator: ",").map(String.init)
            chosen.overrides.append("--strategies \(strategies)")
        }
        if let clients {
            chosen.clientCounts = clients.split(separator: ",").map { Int($0)! }
            chosen.overrides.append("--clients \(clients)")
        }
        if let repetitions {
            chosen.repetitions = repetitions
            chosen.ceilingRepetitions = min(chosen.ceilingRepetitions, repetitions)
            chosen.overrides.append("--repetitions \(repetitions)")
        }
        if let seconds {
            chosen.cellSeconds = seconds
            chosen.overrides.append("--seconds \(seconds)")
        }
        return chosen
    }

    func run() throws {
        let chosen = plan
        let selected = selectedCases
        let configuration: ServerConfiguration
        let claim: DatabaseClaim
        do {
            configuration = try ServerConfiguration.fromEnvironment()
            if let reportDir, let problem = ReportFile.linkedFolderProblem(reportDir) { throw BenchError("--report-dir \(problem)") }
            // Refused (or waited for) before the report folder is made: see DatabaseClaim.
            claim = try ScenarioRunner.claimDatabase(
                configuration, command: "bench", waitSeconds: database.seconds, waiting: DatabaseWaitOptions.announce)
            if let reportDir { try FileManager.default.createDirectory(atPath: reportDir, withIntermediateDirectories: true) }
        } catch {
            throw startupFailure("\(error)")
        }
        defer { claim.release() }
        let runner = BenchRunner(configuration: configuration, preset: chosen, cases: selected)
        runner.log = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        runner.claim = claim
        let results: BenchResults
        do {
            results = try runner.run()
        } catch {
            throw startupFailure("\(error)")
        }
        let markdown = BenchReport.markdown(results)
        print(markdown)
        if let reportDir {
            do {
                let folder = URL(fileURLWithPath: reportDir, isDirectory: true)
                try ReportFile.write(BenchReport.json(results), named: "bench.json", in: folder)
                try ReportFile.write(BenchReport.csv(results), named: "bench.csv", in: folder)
                try ReportFile.write(markdown, named: "bench.md", in: folder)
                try BenchHTML.write(results, to: reportDir)
            } catch {
                FileHandle.standardError.write(Data("lockproof: error: writing the reports: \(error)\n".utf8))
                throw ExitCode(1)
            }
            print("reports in \(reportDir): bench.json, bench.csv, bench.md, bench.html")
        }
        if results.failed { throw ExitCode(1) }
    }
}
