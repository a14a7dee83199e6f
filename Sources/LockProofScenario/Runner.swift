import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// Runs scenarios against real servers: a clean schema, the seed data, virtual users on their own
/// threads released at one barrier, a recorded history, then the checkers and thresholds.
public final class ScenarioRunner {
    public let configuration: ServerConfiguration
    public let shared: SharedServices
    /// Every event and operation also goes here (the Prometheus exporter), if set.
    public var forward: (any EventSink)?
    public var operationObserver: (@Sendable (CaseName, String, OperationOutcome, Double) -> Void)?
    /// Every request a run through a target sends (`TargetClient.RequestObserver`): the load side's
    /// RED metrics. Not called in process.
    public var targetRequestObserver: TargetClient.RequestObserver?
    public var progress: ProgressReporter
    /// Where `NAME.history.jsonl` is streamed during the run; nil: the history is only checked.
    public var historyDirectory: URL?
    /// Stops the running scenario within a second (its clients finish their current operation).
    public let stop = StopRequest()
    /// The caller's hold on the database for a series of runs (`claimDatabase`); nil: each `run`
    /// claims it for itself.
    public var claim: DatabaseClaim?
    /// The throwaway servers the caller's preflight found for each run (`ManagedServers.check`, by
    /// run name), so that a suite checks them once; a run missing here is checked when it starts.
    public var managedServers: [String: ManagedServers?] = [:]
    /// How long an interrupted run waits for its clients before it reports without them.
    static var stopGraceSeconds: Double { ClientLoop.stopGraceSeconds }
    /// Called on each client's thread once its client exists, before the start barrier (the
    /// benchmark traces the statements a strategy sends through it).
    public var clientCreated: (@Sendable (_ index: Int, _ client: CommerceClient) -> Void)?
    /// Runs go through this target's API and are judged by its database (`TargetRun.swift`); nil: in process.
    public var target: Target?

    public init(configuration: ServerConfiguration, shared: SharedServices, progress: ProgressReporter) {
        self.configuration = configuration
        self.shared = shared
        self.progress = progress
    }

    /// Fails fast, before anything runs, when a server cannot be reached, the database is not
    /// LockProof's (`Schema.ownership`) or the user lacks a privilege a run needs. Reads only.
    public static func checkReachable(_ configuration: ServerConfiguration) throws {
        let database: PostgresConnection
        do {
            database = try configuration.openDatabase()
        } catch {
            throw RunAborted(message: "PostgreSQL is unreachable: \(error)")
        }
        try DatabaseClaim.refuseUnlessWritable(database, configuration: configuration)
        do {
            let redis = try RedisConnection(endpoint: configuration.redis, commandTimeout: 2)
            _ = try redis.checked(["PING"])
        } catch {
            throw RunAborted(message: "Redis at \(configuration.redis) is unreachable: \(error)")
        }
    }

    /// `checkReachable`, then the run's claim on the database and its Redis keyspace for as long
    /// as the caller holds it (see `DatabaseClaim`), then the schema if the database was empty.
    public static func claimDatabase(
        _ configuration: ServerConfiguration, command: String, waitSeconds: Double = 0, waiting: ((String) -> Void)? = nil
    ) throws -> DatabaseClaim {
        try checkReachable(configuration)
        return try DatabaseClaim.claimForWriting(
            .run, configuration: configuration, command: command, waitSeconds: waitSeconds, waiting: waiting)
    }

    /// Runs and judges one scenario. What breaks once the clients are started (a client that
    /// cannot connect, a hang, an interruption) is in the result's `runError`; what breaks before
    /// (the schema, the seed) is thrown.
    /// Without a `claim` set by the caller, the run claims the database for itself (refused at once
    /// when another run holds it) and lets it go at the end. A claim lost during the run (taken by
    /// another run) makes the run an error: its verdict could be about both.
    public func run(_ scenario: Scenario) throws -> ScenarioResult {
        let ownClaim = claim == nil ? try Self.claimDatabase(configuration, command: "run") : nil
        defer { ownClaim?.release() }
        let startedAt = Date()
        var result = try runClaimed(scenario)
        // An error a control expects hides nothing: a lost claim still makes the run an error.
        if result.runError == nil || result.errorExpected, let lost = (claim ?? ownClaim)?.lost() {
            result.runError = "the run's hold on the database was lost, so its verdict may be about another run too: \(lost)"
        }
        result.startedAt = startedAt
        result.endedAt = Date()
        result.machine = MachineInfo.probeOnce(configuration)
        result.target = target?.name
        return result
    }

    /// One run: the data (`RunSeed.swift`), the clients and the nemesis on one clock
    /// (`ClientLoop.swift`, `Faults/`), then the judging (`RunJudging.swift`).
    private func runClaimed(_ scenario: Scenario) throws -> ScenarioResult {
        if let reason = stop.reason { return .error(scenario, "\(reason) before it started", interrupted: true) }
        if let target { return try runThrough(target, scenario) }
        let initial = try prepareData(scenario)
        // Server faults strike only servers the environment says the runner started itself.
        let servers: ManagedServers?
        do {
            servers = try managedServers[scenario.name] ?? ManagedServers.check(configuration, faults: scenario.faults.map(\.kind))
        } catch {
            throw RunAborted(message: "\(scenario.name): \(error)")
        }

        let statistics = RunStatistics(forward: forward)
        let judges = checkers(for: scenario)
        let historyFile = historyDirectory.map { $0.appendingPathComponent(ReportWriter.fileBase(scenario.name) + ".history.jsonl") }
        let history = try HistoryRecorder(checkers: judges, file: historyFile)
        let workload = scenario.workload
        let settings = commerceSettings(workload)
        // Shared pools (workload.connections), or nil: one session and Redis connection per client.
        let pools = workload.connections.map {
            ClientPools(
                configuration: self.configuration, settings: settings, postgres: $0.postgres, redis: $0.redis, waitSeconds: $0.waitSeconds)
        }
        defer { pools?.close() }
        let gateway = SimulatedPaymentGateway(
            latencySeconds: (workload.gatewayLatencyMilliseconds.lowerBound / 1000)...(workload.gatewayLatencyMilliseconds.upperBound / 1000),
            failureRate: workload.gatewayFailureRate, seed: workload.randomSeed,
            records: TimedGatewayRecords(
                try DatabaseGatewayRecords(databaseURL: configuration.databaseURL), statistics: statistics))
        let loop = ClientLoop(
            scenario: scenario, initial: initial, history: history, statistics: statistics, progress: progress, stop: stop,
            observer: operationObserver)
        let runClock = loop.clock
        let runOrigin = loop.origin
        let faultSwitches = ClientFaultSwitches(seed: workload.randomSeed)
        let nemesis = Nemesis(
            scenario.faults,
            context: FaultContext(
                configuration: configuration, shared: shared, servers: servers, gateway: gateway, clients: faultSwitches,
                clock: runClock))
        do {
            try nemesis.prepare()
        } catch {
            _ = nemesis.stop(runSeconds: 0)
            throw RunAborted(message: "\(scenario.name): the faults could not be prepared: \(error)")
        }

        // Recovery during the workload, from several workers at once (`workload.recovery`).
        let recoveryWorkers: RecoveryWorkers?
        do {
            if let spec = scenario.workload.recovery, scenario.performs(.pay) {
                recoveryWorkers = try RecoveryWorkers(spec, configuration: self.configuration, statistics: statistics, gateway: gateway)
            } else {
                recoveryWorkers = nil
            }
        } catch {
            _ = nemesis.stop(runSeconds: 0)
            throw RunAborted(message: "\(scenario.name): the recovery workers could not connect: \(error)")
        }

        // The in-process core is this runner's one client: client-side faults and tracing attach
        // to it here; the generator, the history and the checkers see only invocations and completions.
        let configuration = configuration
        let shared = shared
        let clientCreated = clientCreated
        loop.start { index in
            let client = InProcessClient {
                // The client's lock grants and releases go to the history as its own (`LockEntry`).
                let core = try CommerceClient(
                    configuration: configuration, shared: shared,
                    events: LockHoldEvents(client: index, forward: statistics, history: history, origin: runOrigin),
                    settings: settings, gateway: gateway, pools: pools)
                core.borrowerName = "client \(index)"
                return core
            }
            try client.open()
            if let core = client.core {
                if !scenario.faults.isEmpty { faultSwitches.install(on: core, index: index, renewer: shared.renewer, clock: runClock) }
                clientCreated?(index, core)
            }
            return client
        }
        let ending = loop.release {
            nemesis.start()
            recoveryWorkers?.start()
        }
        // Before the nemesis heals anything and before the end-of-run recovery.
        let recoveryError = recoveryWorkers?.stop()
        // At the run's end, not after the faults are healed and the recovery has run.
        let breaker = CircuitBreakerSummary(shared.breaker)
        // A pooled session handed to two borrowers (each refused where it happened): the run is an error.
        let doubleBorrow = pools.flatMap { pools -> String? in
            let postgres = pools.postgres.doubleBorrows, redis = pools.redis.doubleBorrows
            guard let first = postgres.first ?? redis.first else { return nil }
            return "\(first) (\(postgres.count + redis.count) double borrows refused)"
        }
        // Every fault still active ends now and every server is restored, whatever happened.
        let faults = nemesis.stop(runSeconds: ending.seconds)
        // The nemesis' process in the same history: each fault's start and end.
        for record in faults {
            for entry in NemesisEntry.entries(of: record) { history.record(entry) }
        }
        return judge(
            FinishedRun(
                scenario: scenario, initial: initial, statistics: statistics, history: history, historyFile: historyFile,
                checkers: judges, gateway: gateway, ending: ending, breaker: breaker, faults: faults, recoveryError: recoveryError, doubleBorrow: doubleBorrow))
    }
}
