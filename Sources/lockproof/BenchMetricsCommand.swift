import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofBench

/// `lockproof bench-metrics`: what the metrics cost. The work is LockProofBench's
/// MetricsOverheadBenchmark; this reads the arguments.
struct BenchMetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-metrics",
        abstract: "Measure the cost of instrumentation (ops/s on vs off) and the time to render and serve /metrics.",
        discussion: """
            Runs one workload (charge-balance, each client charging its own user, so that the \
            clients do not contend and the numbers are steady) in rounds that alternate \
            instrumentation on and off in the same process (on-off, then off-on, ...), so that drift \
            of the machine hits both sides alike. Then populates every series of the catalog and \
            times rendering the exposition and serving it over loopback HTTP. Adds users to the \
            database named by LOCKPROOF_DATABASE_URL (only a database LockProof created, and \
            not while a run or serve instance holds it: exit 2); deletes nothing.

            Example:
              lockproof bench-metrics --clients 4 --rounds 6 --seconds 2
            """)

    @Option(parsing: .unconditional, help: "Concurrent clients, each on its own thread with its own connections, 1 to 300.")
    var clients = 4

    @Option(parsing: .unconditional, help: "Rounds; each runs the workload once with instrumentation on and once off, 1 to 1000.")
    var rounds = 6

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Length of each half-round, \(SecondsBounds.describe(SecondsBounds.benchHalfRound)).", valueName: "seconds"))
    var seconds: Double = 2

    @Option(help: "Strategy of the charge-balance workload.")
    var strategy: String = ChargeBalanceStrategy.seed.rawValue

    @OptionGroup var servers: ServerOptions

    @Option(parsing: .unconditional, help: "Scrapes (and renders) to time, 1 to 1000000.")
    var scrapes = 1000

    func validate() throws {
        try checkBounds(clients, option: "--clients", range: 1...300)
        try checkBounds(rounds, option: "--rounds", range: 1...1_000)
        try checkBounds(scrapes, option: "--scrapes", range: 1...1_000_000)
        try checkBounds(seconds, option: "--seconds", range: SecondsBounds.benchHalfRound)
        guard ChargeBalanceStrategy(rawValue: strategy) != nil else {
            throw ValidationError(
                "--strategy must be one of \(ChargeBalanceStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let benchmark = MetricsOverheadBenchmark(
            configuration: try servers.configuration(), clients: clients, rounds: rounds, seconds: seconds, strategy: ChargeBalanceStrategy(rawValue: strategy)!,
            scrapes: scrapes)
        do {
            try benchmark.run()
        } catch let error as BenchError {
            throw startupFailure(error.message)
        }
    }
}
