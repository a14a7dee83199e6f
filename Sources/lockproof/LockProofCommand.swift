import ArgumentParser
import LockProofMetrics

/// The `lockproof` command. Each subcommand lives in its own file: `run`, `verify` and `check` in
/// ScenarioCommands.swift, `serve` in ServeCommand.swift, `recover` in RecoverCommand.swift, `bench` in BenchCommand.swift,
/// `bench-metrics` in BenchMetricsCommand.swift, `compare` in CompareCommand.swift.
struct LockProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockproof",
        abstract: "Prove that locking strategies keep their promises on real PostgreSQL and Redis, and measure what they cost.",
        discussion: """
            Servers are taken from LOCKPROOF_DATABASE_URL (default \
            postgresql://lockproof@127.0.0.1:25432/lockproof) and LOCKPROOF_REDIS_URL (default \
            redis://127.0.0.1:26379/0). `scripts/services.sh start` starts throwaway ones.
            Without arguments, or with `help` and a name that is no subcommand, it prints the help \
            on stderr and exits 2 (a usage error, as for every bad argument).

            Example (servers from `eval "$(scripts/services.sh start)"`):
              lockproof verify Scenarios --report-dir .run/reports
              lockproof compare .run/reports.previous .run/reports
            """,
        version: LockProofBuild.version,
        subcommands: [
            RunCommand.self, VerifyCommand.self, CheckCommand.self, ServeCommand.self, BenchCommand.self,
            BenchMetricsCommand.self, RecoverCommand.self, CompareCommand.self,
        ])
}

extension LockProofCommand {
    /// What argument-parser would answer with success although nothing was asked: no arguments at
    /// all (it prints the help and exits 0, so a script that forgot its subcommand "passes") and
    /// `help NAME` with a NAME that is no subcommand (it prints the root help and exits 0). Both
    /// are usage errors: the message to print before exiting 2, or nil to parse as usual.
    static func usageErrorBeforeParsing(_ arguments: [String]) -> String? {
        if arguments.isEmpty {
            return helpMessage() + "\nError: no subcommand given; expected one of \(subcommandNames(of: self))"
        }
        guard arguments.first == "help" else { return nil }
        var command: ParsableCommand.Type = self
        var path = ["lockproof"]
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            guard let next = command.configuration.subcommands.first(where: { $0._commandName == name }) else {
                let parent = path.joined(separator: " ")
                return "Error: lockproof help: unknown subcommand '\(name.prefix(40))' of '\(parent)'; expected "
                    + (command.configuration.subcommands.isEmpty
                        ? "none: '\(parent)' has no subcommands"
                        : "one of \(subcommandNames(of: command))")
                    + "\nSee 'lockproof --help'."
            }
            command = next
            path.append(name)
        }
        return nil
    }

    private static func subcommandNames(of command: ParsableCommand.Type) -> String {
        command.configuration.subcommands.map { $0._commandName }.joined(separator: ", ")
    }
}
