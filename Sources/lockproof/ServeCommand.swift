import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofMetrics
import LockProofPostgres
import Logging

/// `lockproof serve`: the service core with its metrics endpoint, until SIGINT or SIGTERM.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service core and serve its Prometheus metrics until SIGINT or SIGTERM.",
        discussion: """
            Connects to PostgreSQL and Redis (LOCKPROOF_DATABASE_URL, LOCKPROOF_REDIS_URL), creates \
            the schema in an empty database (a database that is not LockProof's is refused, see \
            README "Data safety"), marks the database as written to by serve (a `lockproof run` \
            refuses it while serve runs; serve refuses a database a run holds), keeps lockproof_compensations_pending up to date from the database, finishes \
            interrupted payments every --recover-interval seconds (as `lockproof recover`), and \
            serves GET /metrics (Prometheus text format) and GET /healthz on --metrics-address. \
            Once listening it prints one line, `metrics: http://HOST:PORT/metrics`, on stdout.
            Exit status: 0 after a clean stop on SIGINT/SIGTERM, 2 when it cannot start (bad \
            address, unreachable server, port in use, a database that is not LockProof's or that \
            a run holds).

            Example:
              lockproof serve --metrics-address 127.0.0.1:9464
            """)

    @Option(
        name: .customLong("metrics-address"),
        help: ArgumentHelp(
            "Where to serve /metrics and /healthz: host:port; port 0 picks a free one. 9464 is job lockproof in Dashboards/prometheus.yml (run/verify: 9465).",
            valueName: "host:port"))
    var metricsAddress = "127.0.0.1:9464"

    @OptionGroup var servers: ServerOptions

    @OptionGroup var database: DatabaseWaitOptions

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds between counts of pending compensations in the database, \(SecondsBounds.describe(SecondsBounds.pollInterval)).",
            valueName: "seconds"))
    var pendingInterval: Double = 5

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds between payment recovery passes (as `lockproof recover`, for intents at least that old), \(SecondsBounds.describe(SecondsBounds.pollInterval)).",
            valueName: "seconds"))
    var recoverInterval: Double = 30

    func validate() throws {
        try checkBounds(pendingInterval, option: "--pending-interval", range: SecondsBounds.pollInterval)
        try checkBounds(recoverInterval, option: "--recover-interval", range: SecondsBounds.pollInterval)
    }

    func run() throws {
        let logger = Logger(label: "lockproof.serve")
        let address: HTTPBindAddress
        do {
            address = try HTTPBindAddress(parsing: metricsAddress)
        } catch {
            throw startupFailure("--metrics-address \(metricsAddress): \(error)")
        }
        // Before any thread starts, so that every thread inherits the blocked signals.
        let signals = TerminationSignals()

        let configuration = try servers.configuration()
        // The drivers name servers by PostgresTarget / RedisEndpoint and clean the messages of
        // libpq and hiredis: no password in any of them.
        let shared: SharedServices
        do {
            shared = try SharedServices(configuration: configuration)
        } catch {
            throw startupFailure("cannot reach Redis: \(error)")
        }
        // Marks the database as written to by a serve instance (a shared claim: several serve
        // instances coexist; a run refuses it, and serve refuses a database a run holds).
        let claim: DatabaseClaim
        do {
            claim = try DatabaseClaim.claimForWriting(
                .serve, configuration: configuration, command: "serve", waitSeconds: database.seconds,
                waiting: DatabaseWaitOptions.announce)
        } catch let refusal as DatabaseNotOwned {
            shared.stop()
            throw startupFailure(refusal.message)
        } catch let refusal as DatabaseBusy {
            shared.stop()
            throw startupFailure(refusal.message)
        } catch let refusal as DatabaseRefused {
            shared.stop()
            throw startupFailure(refusal.message)
        } catch {
            shared.stop()
            throw startupFailure("cannot reach PostgreSQL: \(error)")
        }
        defer { claim.release() }
        let metrics = LockProofMetrics()
        let monitor: CompensationsPendingMonitor
        let recovery: PeriodicRecovery
        do {
            let database = try configuration.openDatabase()
            try CompensationsPendingMonitor.refresh(metrics: metrics, database: database)
            monitor = try CompensationsPendingMonitor(
                metrics: metrics, databaseURL: configuration.databaseURL, intervalSeconds: pendingInterval,
                connectTimeoutSeconds: configuration.connectTimeoutSeconds)
            let recoveryClient = try CommerceClient(
                configuration: configuration, shared: nil, events: metrics,
                gateway: SimulatedPaymentGateway(
                    failureRate: 0, seed: 1, records: DatabaseGatewayRecords(databaseURL: configuration.databaseURL)))
            recovery = PeriodicRecovery(client: recoveryClient, intervalSeconds: recoverInterval)
        } catch {
            shared.stop()
            throw startupFailure("cannot reach PostgreSQL: \(error)")
        }
        let endpoint = MetricsEndpoint(metrics: metrics, address: address, health: { monitor.health })
        do {
            try endpoint.start()
        } catch {
            shared.stop()
            throw startupFailure("\(error)")
        }
        monitor.start()
        recovery.start()

        let listening = "\(address.host.contains(":") ? "[\(address.host)]" : address.host):\(endpoint.boundPort ?? address.port)"
        // Unbuffered, so that a parent process reading the pipe sees it at once.
        FileHandle.standardOutput.write(Data("metrics: http://\(listening)/metrics\n".utf8))
        logger.info(
            "serving",
            metadata: [
                "metrics": "http://\(listening)/metrics", "database": "\(redactedURL(configuration.databaseURL))",
                "redis": "\(configuration.redis)",
            ])

        let signal = signals.wait()
        logger.info("stopping", metadata: ["signal": "\(TerminationSignals.name(signal))"])
        endpoint.stop()
        monitor.stop()
        recovery.stop()
        shared.stop()
        logger.info("stopped")
    }
}
