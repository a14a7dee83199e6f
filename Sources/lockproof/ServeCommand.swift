import ArgumentParser
import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofMetrics
import LockProofPostgres
import LockProofService
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
            Once listening it prints one line, `metrics: http://HOST:PORT/metrics`, on stdout. \
            With --api-address it also serves the cases as a JSON HTTP API (api/openapi.yaml, \
            docs/API.md) under the --strategy design, on --workers threads in front of a pool of \
            --connections PostgreSQL sessions, and prints `api: http://HOST:PORT` on stdout \
            before the metrics line.
            Exit status: 0 after a clean stop on SIGINT/SIGTERM, 2 when it cannot start (bad \
            address, unreachable server, port in use, a database that is not LockProof's or that \
            a run holds).

            Example:
              lockproof serve --metrics-address 127.0.0.1:9464
              lockproof serve --api-address 127.0.0.1:8080 --strategy charge-balance=optimistic-retry --rate-limit 20/s
            """)

    @Option(
        name: .customLong("metrics-address"),
        help: ArgumentHelp(
            "Where to serve /metrics and /healthz: host:port; port 0 picks a free one. 9464 is job lockproof in Dashboards/prometheus.yml (run/verify: 9465).",
            valueName: "host:port"))
    var metricsAddress = "127.0.0.1:9464"

    @Option(
        name: .customLong("api-address"),
        help: ArgumentHelp(
            "Serve the HTTP API (api/openapi.yaml) on host:port; port 0 picks a free one. Without it, no API.",
            valueName: "host:port"))
    var apiAddress: String?

    @Option(
        name: .customLong("strategy"),
        help: ArgumentHelp(
            "The API's design: case=strategy,... (e.g. charge-balance=optimistic-retry,issue-coupon=atomic); cases not named run the seed's strategy.",
            valueName: "case=strategy,..."))
    var strategy: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("API worker threads, 1 to 1000 (Tomcat's default maxThreads, 200).", valueName: "n"))
    var workers: Int = 200

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "PostgreSQL sessions in the API's pool, 1 to 500 (HikariCP's default maximumPoolSize, 10).", valueName: "n"))
    var connections: Int = 10

    @Option(
        name: .customLong("rate-limit"),
        help: ArgumentHelp(
            "Per-user request limit of the API in Redis, N/s, N/min or N/h (e.g. 20/s); off by default. Past it: 429 with Retry-After.",
            valueName: "N/unit"))
    var rateLimit: String?

    @Option(
        name: .customLong("processing-delay"),
        parsing: .unconditional,
        help: ArgumentHelp(
            "The API's application think time between reading a row and writing it back, 0 to 1 s (default 0): widens the race windows the instance faults aim at.",
            valueName: "seconds"))
    var processingDelay: Double = 0

    @Option(
        name: .customLong("gateway-latency"),
        parsing: .unconditional,
        help: ArgumentHelp(
            "How long the API's simulated payment gateway takes to answer, 0 to 10 s (default 0): a kill then finds payments between their deduction and the gateway's answer.",
            valueName: "seconds"))
    var gatewayLatency: Double = 0

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
        try checkBounds(workers, option: "--workers", range: 1...1_000)
        try checkBounds(processingDelay, option: "--processing-delay", range: 0...1)
        try checkBounds(gatewayLatency, option: "--gateway-latency", range: 0...10)
        if apiAddress == nil, processingDelay != 0 || gatewayLatency != 0 {
            throw ValidationError("--processing-delay and --gateway-latency configure the API: give --api-address too")
        }
        try checkBounds(connections, option: "--connections", range: 1...500)
        do {
            if let strategy { _ = try APIStrategies.parse(strategy) }
            if let rateLimit { _ = try RateLimit.parse(rateLimit) }
        } catch {
            throw ValidationError(error.message)
        }
        if apiAddress == nil, strategy != nil || rateLimit != nil {
            throw ValidationError("--strategy and --rate-limit configure the API: give --api-address too")
        }
    }

    func run() throws {
        let logger = Logger(label: "lockproof.serve")
        let address: HTTPBindAddress
        do {
            address = try HTTPBindAddress(parsing: metricsAddress)
        } catch {
            throw startupFailure("--metrics-address \(metricsAddress): \(error)")
        }
        var apiBind: HTTPBindAddress?
        if let apiAddress {
            do {
                apiBind = try HTTPBindAddress(parsing: apiAddress)
            } catch {
                throw startupFailure("--api-address \(apiAddress): \(error)")
            }
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
        var api: (service: APIService, server: APIServer)?
        if let apiBind {
            var options = APIService.Options()
            options.strategies = try strategy.map { try APIStrategies.parse($0) } ?? APIStrategies()
            options.workers = workers
            options.connections = connections
            options.rateLimit = try rateLimit.map { try RateLimit.parse($0) }
            options.settings.processingDelaySeconds = processingDelay
            let service: APIService
            do {
                service = APIService(
                    options: options, configuration: configuration, shared: shared, metrics: metrics,
                    gateway: SimulatedPaymentGateway(
                        latencySeconds: gatewayLatency...gatewayLatency, failureRate: 0, seed: 2,
                        records: try DatabaseGatewayRecords(databaseURL: configuration.databaseURL)))
            } catch {
                endpoint.stop()
                shared.stop()
                throw startupFailure("cannot reach PostgreSQL: \(error)")
            }
            let server = service.makeServer(address: apiBind)
            do {
                try server.start()
            } catch {
                endpoint.stop()
                service.close()
                shared.stop()
                throw startupFailure("--api-address: \(error)")
            }
            api = (service, server)
            let apiListening = "\(apiBind.host.contains(":") ? "[\(apiBind.host)]" : apiBind.host):\(server.boundPort ?? apiBind.port)"
            FileHandle.standardOutput.write(Data("api: http://\(apiListening)\n".utf8))
            logger.info(
                "serving the API",
                metadata: [
                    "api": "http://\(apiListening)", "strategies": "\(options.strategies)", "workers": "\(workers)",
                    "connections": "\(connections)", "rate-limit": "\(options.rateLimit.map(\.description) ?? "off")",
                ])
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
        api?.server.stop()
        api?.service.close()
        endpoint.stop()
        monitor.stop()
        recovery.stop()
        shared.stop()
        logger.info("stopped")
    }
}
