import ArgumentParser
import LockProofMetrics

/// The `lockproof` command. Each subcommand lives in its own file: `run`, `verify` and `check` in
/// ScenarioCommands.swift, `serve` in ServeCommand.swift, `recover` in RecoverCommand.swift, `bench` in BenchCommand.swift,
/// `bench-metrics` in BenchMetricsCommand.swift.
struct LockProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockproof",
        abstract: "Prove that locking strategies keep their promises on real PostgreSQL and Redis, and measure what they cost.",
        discussion: """
            Servers are taken from LOCKPROOF_DATABASE_URL (default \
            postgresql://lockproof@127.0.0.1:25432/lockproof) and LOCKPROOF_REDIS_URL (default \
            redis://127.0.0.1:26379/0). `scripts/services.sh start` starts throwaway ones.
            """,
        version: LockProofBuild.version,
        subcommands: [
            RunCommand.self, VerifyCommand.self, CheckCommand.self, ServeCommand.self, BenchCommand.self,
            BenchMetricsCommand.self, RecoverCommand.self,
        ])
}
