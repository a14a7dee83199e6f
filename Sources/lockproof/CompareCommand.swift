import ArgumentParser
import Foundation
import LockProofBench
import LockProofScenario

/// `lockproof compare BASELINE NEW`: what changed between two report folders. The work is
/// LockProofBench's ReportComparison; this reads arguments and writes the file.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two report folders (run/verify --report-dir, or bench --report-dir) scenario by scenario or cell by cell.",
        discussion: """
            Prints the differences, verdict changes first, then what got slower or faster beyond the \
            noise, then a table of every scenario (or bench cell); writes the same text to \
            NEW/compare.txt, or to --output. A change inside the noise is "no change": with 2 or \
            more repetitions on both sides (bench cells) it counts when the ranges of the \
            repetitions do not overlap and the medians differ by more than 10 %; with one \
            repetition (a run's report) when the values differ by more than --tolerance. \
            Throughput is judged on runs of at least 20 operations, p99 on at least 200 samples. \
            The rule is printed with the result. Exit status: 0 no regression, 1 a regression (a \
            verdict got worse: PASS → FAIL or ERROR, an invariant that held broke; or throughput \
            fell or p99 rose beyond the noise), 2 bad input (a folder without reports, a report \
            missing a field: named; nothing written).

            Example (`make verify` keeps the previous run's reports in .run/reports.previous):
              lockproof compare .run/reports.previous .run/reports
            """)

    @Argument(help: ArgumentHelp("The earlier report folder.", valueName: "baseline"))
    var baseline: String

    @Argument(help: ArgumentHelp("The later report folder.", valueName: "new"))
    var new: String

    @Option(help: ArgumentHelp("Write the comparison here instead of NEW/compare.txt.", valueName: "file"))
    var output: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Relative change that counts when a side has one repetition, in percent, 1 to 1000 (two back-to-back make verify runs on a shared 2-core machine moved single runs by -54 % to +200 %).",
            valueName: "percent"))
    var tolerance: Double = 50

    @Flag(name: .customLong("no-color"), help: "No colour (also when NO_COLOR is set, or stdout is not a terminal).")
    var noColor = false

    func validate() throws {
        try checkBounds(tolerance, option: "--tolerance", range: 1...1_000, unit: "percent")
    }

    func run() throws {
        let comparison: ReportComparison
        do {
            comparison = try ReportComparison(
                baseline: try ReportSet.load(baseline), new: try ReportSet.load(new), tolerance: tolerance / 100)
        } catch let error as ComparisonInputError {
            throw startupFailure(error.description)
        }
        let destination = URL(fileURLWithPath: output ?? (new as NSString).appendingPathComponent("compare.txt"))
        // As for every report folder: compare.txt is never written into a folder reached through a link.
        let folder = destination.deletingLastPathComponent().path
        if let problem = ReportFile.linkedFolderProblem(folder) { throw startupFailure("\(output == nil ? "NEW" : "--output") \(problem)") }
        do {
            try ReportFile.write(
                comparison.text() + "\n", named: destination.lastPathComponent, in: destination.deletingLastPathComponent())
        } catch {
            throw startupFailure("\(destination.path): cannot be written: \(error)")
        }
        let style = TerminalStyle.decide(
            noColorFlag: noColor, environment: ProcessInfo.processInfo.environment, stdoutIsTerminal: isatty(STDOUT_FILENO) == 1)
        print(comparison.text(style: style))
        print("written to \(destination.path)")
        if !comparison.regressions.isEmpty { throw ExitCode(1) }
    }
}
