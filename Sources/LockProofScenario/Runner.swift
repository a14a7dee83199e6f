import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// What one scenario run produced.
public struct ScenarioResult: Sendable {
    public let scenario: Scenario
    /// Operations by outcome and reason (the history itself is in `NAME.history.jsonl`).
    public let operations: OperationTally
    public let checks: [CheckResult]
    public let thresholds: [ThresholdResult]
    public let statistics: RunStatistics
    public let seconds: Double
    /// Set when the run itself broke (a client could not connect, a hang, a lost server, an
    /// interruption): the scenario is an error, whatever its checks said.
    public internal(set) var runError: String?
    /// What the end-of-run payment recovery did (payment scenarios only).
    public var recovery: RecoveryReport? = nil
    /// The Redis circuit breaker during the run.
    public var circuitBreaker: CircuitBreakerSummary? = nil
    /// The faults as they really happened (kind, start, end, targets).
    public var faults: [FaultRecord] = []
    /// Redis locks that had two holders at once in this process (lease lost, failover).
    public var lockOverlaps: LockOverlapSummary? = nil
    /// Stopped by a signal before it finished.
    public let interrupted: Bool
    /// Its clients were still running when the runner gave up on them (a hang, an interruption):
    /// nothing else can run in this process without being disturbed by them.
    public let clientsAbandoned: Bool
    /// Where the history was written, if anywhere.
    public let historyFile: URL?
    /// When the run began and ended (wall clock), and what it ran on: set by `Runner.run`; a
    /// result made without running (a refusal) has the time it was made.
    public var startedAt = Date()
    public var endedAt = Date()
    public var machine = MachineInfo.local()

    public init(
        scenario: Scenario, operations: OperationTally, checks: [CheckResult], thresholds: [ThresholdResult],
        statistics: RunStatistics, seconds: Double, runError: String?, interrupted: Bool = false,
        clientsAbandoned: Bool = false, historyFile: URL? = nil, recovery: RecoveryReport? = nil,
        circuitBreaker: CircuitBreakerSummary? = nil, faults: [FaultRecord] = [], lockOverlaps: LockOverlapSummary? = nil
    ) {
        self.scenario = scenario
        self.operations = operations
        self.checks = checks
        self.thresholds = thresholds
        self.statistics = statistics
        self.seconds = seconds
        self.runError = runError
        self.interrupted = interrupted
        self.clientsAbandoned = clientsAbandoned
        self.historyFile = historyFile
        self.recovery = recovery
        self.circuitBreaker = circuitBreaker
        self.faults = faults
        self.lockOverlaps = lockOverlaps
    }

    /// A scenario that could not be run or judged at all.
    public static func error(_ scenario: Scenario, _ message: String, interrupted: Bool = false, seconds: Double = 0) -> ScenarioResult {
        ScenarioResult(
            scenario: scenario, operations: OperationTally(), checks: [], thresholds: [], statistics: RunStatistics(),
            seconds: seconds, runError: message, interrupted: interrupted)
    }

    /// Did any check catch a violation?
    public var violationCaught: Bool { checks.contains { !$0.passed } }

    /// No operation was performed: nothing was tested, so nothing can pass.
    public var nothingTested: Bool { operations.total == 0 }

    /// A scenario passes when its checks and thresholds pass; a negative control passes when a
    /// check caught its violation. A run that broke, or performed no operation, never passes.
    public var passed: Bool {
        guard runError == nil, !nothingTested else { return false }
        switch scenario.expect {
        case .pass: return checks.allSatisfy(\.passed) && thresholds.allSatisfy(\.passed)
        case .violation: return violationCaught
        }
    }

    public enum Status: String, Sendable {
        case pass, fail, error
    }

    /// `error` when the run broke (it was not judged, or not completely), else pass or fail.
    public var status: Status { runError != nil ? .error : passed ? .pass : .fail }

    public func count(_ outcome: HistoryOutcome) -> Int { operations.count(outcome) }
    public var throughput: Double { seconds > 0 ? Double(operations.total) / seconds : 0 }
}

/// How the Redis circuit breaker fared during a run.
public struct CircuitBreakerSummary: Sendable, Codable, Equatable {
    /// Seconds spent open or half-open (database locks alone).
    public let openSeconds: Double
    /// Times it opened.
    public let openings: Int
    /// Lock calls that skipped Redis.
    public let bypassed: Int

    init(_ breaker: CircuitBreaker) {
        openSeconds = breaker.openSeconds
        openings = breaker.openCount
        bypassed = breaker.bypassCount
    }

    enum CodingKeys: String, CodingKey {
        case openSeconds = "open_seconds"
        case openings
        case bypassed = "redis_lock_bypassed"
    }
}

/// Two clients holding one Redis lock at once.
public struct LockOverlapSummary: Sendable, Codable, Equatable {
    /// Acquisitions that found the lock still held by another client.
    public let overlaps: Int
    public let maxHolders: Int
    public let firstKey: String?

    enum CodingKeys: String, CodingKey {
        case overlaps
        case maxHolders = "max_holders"
        case firstKey = "first_key"
    }
}

/// A run stopped before it could be judged.
public struct RunAborted: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A request to stop the running scenario (SIGINT, SIGTERM), from any thread.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?

    public init() {}

    /// The first reason wins (e.g. "interrupted by SIGINT").
    public func request(_ reason: String) {
        lock.lock()
        if stored == nil { stored = reason }
        lock.unlock()
    }

    public var reason: String? {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// Runs scenarios against real servers: a clean schema, the seed data, virtual users on their own
/// threads released at one barrier, a recorded history, then the checkers and thresholds.
public final class ScenarioRunner {
    public let configuration: ServerConfiguration
    public let shared: SharedServices
    /// Every event and operation also goes here (the Prometheus exporter), if set.
    public var forward: (any EventSink)?
    public var operationObserver: (@Sendable (CaseName, String, OperationOutcome, Double) -> Void)?
    public var progress: ProgressReporter
    /// Where `NAME.history.jsonl` is streamed during the run; nil: the history is only checked.
    public var historyDirectory: URL?
    /// Stops the running scenario within a second (its clients finish their current operation).
    public let stop = StopRequest()
    /// The caller's hold on the database for a series of runs (`claimDatabase`); nil: each `run`
    /// claims it for itself.
    public var claim: DatabaseClaim?
    /// How long an interrupted run waits for its clients before it reports without them.
    static let stopGraceSeconds = 0.8
    /// Called on each client's thread once its client exists, before the start barrier (the
    /// benchmark traces the statements a strategy sends through it).
    public var clientCreated: (@Sendable (_ index: Int, _ client: CommerceClient) -> Void)?

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
        if result.runError == nil, let lost = (claim ?? ownClaim)?.lost() {
            result.runError = "the run's hold on the database was lost, so its verdict may be about another run too: \(lost)"
        }
        result.startedAt = startedAt
        result.endedAt = Date()
        result.machine = MachineInfo.probeOnce(configuration)
        return result
    }

    private func runClaimed(_ scenario: Scenario) throws -> ScenarioResult {
        if let reason = stop.reason { return .error(scenario, "\(reason) before it started", interrupted: true) }
        let db = try configuration.openDatabase()
        let deadline = PreparationDeadline(
            seconds: scenario.workload.timeoutSeconds, backendPID: db.backendPID, configuration: configuration)
        let initial: InitialState
        do {
            initial = try resetAndSeed(scenario, db: db)
        } catch {
            guard deadline.finish() else { throw error }
            throw RunAborted(message: "\(scenario.name): emptying the tables and seeding did not finish within \(formatNumber(scenario.workload.timeoutSeconds)) s (workload.timeout)")
        }
        deadline.finish()
        // Server faults strike only servers the environment says the runner started itself.
        let servers: ManagedServers?
        do {
            servers = try ManagedServers.check(configuration, faults: scenario.faults.map(\.kind))
        } catch {
            throw RunAborted(message: "\(scenario.name): \(error)")
        }

        let statistics = RunStatistics(forward: forward)
        let judges = checkers(for: scenario)
        let historyFile = historyDirectory.map { $0.appendingPathComponent(ReportWriter.fileBase(scenario.name) + ".history.jsonl") }
        let history = try HistoryRecorder(checkers: judges, file: historyFile)
        let workload = scenario.workload
        let virtualUsers = workload.virtualUsers[0]
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
        let clockStart = LockedValue(0.0)
        let runClock: @Sendable () -> Double = { monotonicSeconds() - clockStart.value }
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
        let barrier = StartBarrier(parties: virtualUsers + 1)
        let group = DispatchGroup()
        let setupErrors = LockedValue<[String]>([])
        let clientLoops = LockedValue(ClientLoopTotals())
        // Set when the clients must stop: an interruption, a hang the runner gave up on.
        let clientsStop = LockedValue(false)
        let observer = operationObserver
        // Each operation reports under its own case and strategy (a mix has several).
        var labels = Dictionary(uniqueKeysWithValues: scenario.operations.map { ($0.operation, ($0.caseName, $0.strategy)) })
        for next in scenario.followUps where labels[next] == nil { labels[next] = (next.caseName, Scenario.followUpStrategy) }
        let operationLabels = labels
        let configuration = configuration
        let shared = shared
        let progress = progress
        let stop = stop
        let clientCreated = clientCreated

        for index in 0..<virtualUsers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                // The in-process core is this runner's one client; the generator, the history and
                // the checkers see only invocations and completions.
                let client = InProcessClient {
                    try CommerceClient(
                        configuration: configuration, shared: shared, events: statistics, settings: settings, gateway: gateway,
                        pools: pools)
                }
                var generator: OperationGenerator?
                do {
                    try client.open()
                    if let core = client.core {
                        if !scenario.faults.isEmpty {
                            faultSwitches.install(on: core, index: index, renewer: shared.renewer, clock: runClock)
                        }
                        clientCreated?(index, core)
                    }
                    generator = OperationGenerator(client: index, scenario: scenario, initial: initial)
                } catch {
                    setupErrors.mutate { $0.append("client \(index): \(error)") }
                }
                barrier.arriveAndWait()
                guard var generator else { return }
                defer { client.close() }
                let started = clockStart.value
                let clock = { monotonicSeconds() - started }
                let deadline = workload.durationSeconds.map { started + $0 }
                var backoff = FailureBackoff()
                var iteration = 0
                func mustStop() -> Bool { clientsStop.value || stop.reason != nil || setupErrors.value.count > 0 }
                // The client's own CPU time over its operations (the benchmark compares it with pgbench's).
                let usageStart = ThreadUsage.now()
                defer {
                    let usage = ThreadUsage.now()
                    clientLoops.mutate {
                        $0.cpuSeconds += usage.cpuSeconds - usageStart.cpuSeconds
                        $0.contextSwitches += usage.contextSwitches - usageStart.contextSwitches
                        $0.mostIterations = max($0.mostIterations, iteration)
                    }
                }
                while true {
                    if let iterations = workload.iterations, iteration >= iterations { break }
                    if let deadline, monotonicSeconds() >= deadline { break }
                    if mustStop() { break }
                    var pause = 0.0
                    var invocation: Invocation? = generator.next(iteration)
                    while let current = invocation {
                        let start = clock()
                        let completion = client.invoke(current)
                        let entry = HistoryEntry(client: index, index: iteration, current, start: start, end: clock(), completion)
                        let outcome = completion.outcome
                        history.record(entry)
                        statistics.recordOperation(outcome: outcome, seconds: entry.seconds)
                        if entry.operation == .pay && (entry.outcome == .ok || entry.reason == "payment_declined") {
                            statistics.countGatewayCall()
                        }
                        if let observer, let (caseName, strategy) = operationLabels[entry.operation] {
                            observer(caseName, strategy, outcome, entry.seconds)
                        }
                        progress.operationFinished(failed: outcome == .error || outcome == .unknown)
                        pause = backoff.delay(after: entry)
                        invocation = generator.followUp(after: current, completion: completion)
                    }
                    iteration += 1
                    if pause > 0 {
                        // A client hammering a dead server: wait a little, never past the deadline.
                        let until = min(monotonicSeconds() + pause, deadline ?? .infinity)
                        while monotonicSeconds() < until && !mustStop() { Thread.sleep(forTimeInterval: min(0.01, pause)) }
                    }
                }
            }
            thread.name = "lockproof-vu-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }

        let expected = workload.iterations.map { $0 * virtualUsers * (workload.payAfterCreate ? 2 : 1) }
        progress.begin(scenario: scenario.name, expectedOperations: expected, durationSeconds: workload.durationSeconds)
        clockStart.set(monotonicSeconds())
        barrier.arriveAndWait()
        nemesis.start()
        let limit = (workload.durationSeconds ?? 0) + workload.timeoutSeconds
        let giveUp = clockStart.value + limit
        var finished = false
        var interruption: String?
        while true {
            if group.wait(timeout: .now() + 0.1) == .success {
                finished = true
                break
            }
            if let reason = stop.reason {
                interruption = reason
                clientsStop.set(true)
                finished = group.wait(timeout: .now() + Self.stopGraceSeconds) == .success
                break
            }
            if monotonicSeconds() >= giveUp { break }
        }
        // Clients that saw the request stop early and the group finishes: still an interruption.
        if interruption == nil, let reason = stop.reason { interruption = reason }
        let seconds = monotonicSeconds() - clockStart.value
        progress.end()
        if finished {
            let loops = clientLoops.value
            statistics.setGauge(RunStatistics.clientCPUSeconds, loops.cpuSeconds)
            statistics.setGauge(RunStatistics.clientContextSwitches, Double(loops.contextSwitches))
            statistics.setGauge(RunStatistics.clientIterationsMost, Double(loops.mostIterations))
        }
        clientsStop.set(true)
        // At the run's end, not after the faults are healed and the recovery has run.
        let breaker = CircuitBreakerSummary(shared.breaker)
        // Every fault still active ends now and every server is restored, whatever happened.
        let faults = nemesis.stop(runSeconds: seconds)
        // The nemesis' process in the same history: each fault's start and end.
        for record in faults {
            for entry in NemesisEntry.entries(of: record) { history.record(entry) }
        }
        let historyFailure = history.finish()
        let operations = history.operations

        func broken(_ message: String, interrupted: Bool = false) -> ScenarioResult {
            ScenarioResult(
                scenario: scenario, operations: operations, checks: [], thresholds: [], statistics: statistics, seconds: seconds,
                runError: message, interrupted: interrupted, clientsAbandoned: !finished, historyFile: historyFile)
        }
        if let interruption {
            return broken("\(interruption) after \(String(format: "%.1f", seconds)) s; not judged", interrupted: true)
        }
        if !setupErrors.value.isEmpty {
            return broken("could not start every client: \(setupErrors.value.first!)")
        }
        guard finished else {
            return broken("the run did not finish within \(Int(limit)) s (workload.timeout): a hang; not judged")
        }
        // A fresh session: the run may have cost the seeding one its backend (terminated, restarted server).
        let checkDB: PostgresConnection
        do {
            checkDB = try connectForChecking()
        } catch {
            return broken("PostgreSQL unreachable after the run, the final state could not be read: \(error)")
        }
        let overlaps = LockOverlapSummary(
            overlaps: shared.holders.overlaps, maxHolders: shared.holders.maxHolders, firstKey: shared.holders.firstOverlappingKey)
        let faultError = faults.first { $0.error != nil }.map { "fault \($0.kind) at \(formatSeconds($0.start)) s: \($0.error!)" }
        // Every interrupted payment is settled before the checkers look (as `lockproof recover`).
        var recovery: RecoveryReport?
        if scenario.performs(.pay) {
            do {
                let client = try CommerceClient(configuration: configuration, shared: nil, events: statistics, gateway: gateway)
                recovery = try PaymentRecovery.run(client: client)
                // What the compensation-failure alert would have seen before recovery.
                statistics.setGauge("compensations_pending_before_recovery", Double(recovery?.compensationsPendingBefore ?? 0))
            } catch {
                return broken("the payment recovery after the run failed: \(error)")
            }
        }
        let context = CheckContext(
            scenario: scenario, initial: initial, db: checkDB, statistics: statistics, faultWindows: history.faultWindows)
        let checks: [CheckResult]
        do {
            checks = try judges.map { try $0.check(context) }
        } catch {
            return broken("a checker could not read the final state: \(error)")
        }
        if !scenario.performs(.pay) {
            statistics.setGauge("lockproof_compensations_pending", 0)
        }
        let thresholds = scenario.thresholds.map { $0.evaluate(statistics, seconds: seconds) }
        return ScenarioResult(
            scenario: scenario, operations: operations, checks: checks, thresholds: thresholds, statistics: statistics,
            seconds: seconds, runError: historyFailure ?? faultError, historyFile: historyFile, recovery: recovery,
            circuitBreaker: breaker, faults: faults, lockOverlaps: overlaps)
    }

    /// A new session for the checkers, retried for up to ten seconds (a server coming back).
    private func connectForChecking() throws -> PostgresConnection {
        let until = monotonicSeconds() + 10
        while true {
            do {
                let db = try configuration.openDatabase()
                _ = try db.query("SELECT 1")
                return db
            } catch {
                if monotonicSeconds() >= until { throw error }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }

    private func commerceSettings(_ workload: WorkloadSpec) -> CommerceSettings {
        var settings = CommerceSettings()
        settings.processingDelaySeconds = workload.thinkMilliseconds / 1000
        if let attempts = workload.retryMaxAttempts {
            settings.retry = RetryPolicy(
                maxAttempts: attempts, baseDelay: settings.retry.baseDelay, maxDelay: settings.retry.maxDelay, jitter: true)
        }
        if let lease = workload.lockLeaseMilliseconds { settings.lock.leaseMilliseconds = lease }
        if let wait = workload.lockWaitMilliseconds { settings.lock.waitMilliseconds = wait }
        if let timeout = workload.rowLockTimeoutMilliseconds { settings.rowLockTimeoutMilliseconds = timeout }
        return settings
    }

    /// A clean schema, no lock keys, and the scenario's seed data: what every run starts from (the
    /// benchmark's pgbench ceiling starts from it too).
    public func resetAndSeed(_ scenario: Scenario, db: PostgresConnection) throws -> InitialState {
        try Schema.reset(db)
        try clearLockKeys()
        var breaker = CircuitBreakerOptions.standard
        if let threshold = scenario.workload.breakerFailureThreshold { breaker.failureThreshold = threshold }
        if let coolDown = scenario.workload.breakerCoolDownMilliseconds { breaker.coolDownSeconds = Double(coolDown) / 1000 }
        shared.breaker.reset(options: breaker)
        shared.holders.reset()
        return try seed(scenario, db: db)
    }

    /// Deletes the lock and fencing keys the cases use, and nothing else in the database.
    private func clearLockKeys() throws {
        let redis = try RedisConnection(endpoint: configuration.redis)
        for pattern in caseLockKeyPatterns + ["lockproof:fence:*"] {
            var cursor = "0"
            repeat {
                let reply = try redis.checked(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])
                guard let parts = reply.array, parts.count == 2, let next = parts[0].text else { break }
                cursor = next
                let keys = parts[1].array?.compactMap(\.text) ?? []
                if !keys.isEmpty { try redis.checked(["DEL"] + keys) }
            } while cursor != "0"
        }
    }

    /// The seed data: users, products, one coupon, and PENDING orders, all with ledger openings.
    private func seed(_ scenario: Scenario, db: PostgresConnection) throws -> InitialState {
        let spec = scenario.seed
        let data = SeedData(db: db)
        var initial = InitialState()
        initial.users = try data.users(count: spec.users, balance: spec.balance)
        initial.products = try data.products(count: spec.products, price: spec.price, stock: spec.stock)
        initial.couponId = try data.coupon(totalQuantity: spec.couponQuantity)
        initial.couponTotal = spec.couponQuantity
        initial.balances = Dictionary(uniqueKeysWithValues: initial.users.map { ($0, spec.balance) })
        initial.stock = Dictionary(uniqueKeysWithValues: initial.products.map { ($0, spec.stock) })
        for caseName in scenario.cases {
            // A case's own rows (`CaseStorage.seed`), from its seed keys (the file's or their defaults).
            let storage = caseName.descriptor.storage
            var values = Dictionary(uniqueKeysWithValues: storage.seedKeys.map { ($0.name, $0.defaultValue) })
            values.merge(spec.caseValues) { _, given in given }
            try storage.seed(values, initial.users, db)
        }
        if spec.cartQuantity > 0 {
            try data.cartLines(users: initial.users, products: initial.products, quantity: spec.cartQuantity)
            initial.cartQuantity = spec.cartQuantity
        }
        if spec.orders > 0 {
            // Set-based, so that pools of tens of thousands of orders seed in a moment. Order n
            // (by id) belongs to user n mod users and holds products n … n + order_items − 1.
            initial.orders = try db.transaction { db in
                let made = try db.query(
                    """
                    WITH made AS (
                        INSERT INTO orders (user_id, status, total_amount)
                        SELECT ($1::bigint[])[((n - 1) % $2) + 1], 'PENDING', $3 FROM generate_series(1, $4) AS n
                        RETURNING id)
                    SELECT id FROM made ORDER BY id
                    """,
                    [postgresArray(initial.users), initial.users.count, spec.orderItems * spec.orderQuantity * spec.price, spec.orders])
                let ids = (0..<made.rowCount).map { made.int($0, 0)! }
                try db.query(
                    """
                    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
                    SELECT o.id, ($1::bigint[])[((o.n - 1 + k) % $2) + 1], $3, $4
                    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM orders WHERE id = ANY($5::bigint[])) AS o,
                         generate_series(0, $6 - 1) AS k
                    """,
                    [postgresArray(initial.products), initial.products.count, spec.orderQuantity, spec.price,
                     postgresArray(ids), spec.orderItems])
                return ids
            }
        }
        return initial
    }
}

/// The simulated gateway's records, timed: the benchmark reports what the gateway adds to a
/// payment (the ceiling runs the strategy's statements, not the gateway's).
struct TimedGatewayRecords: GatewayRecords {
    let inner: any GatewayRecords
    let statistics: RunStatistics

    init(_ inner: any GatewayRecords, statistics: RunStatistics) {
        self.inner = inner
        self.statistics = statistics
    }

    func first(orderId: Int, amount: Int, _ answer: GatewayAnswer) throws -> GatewayAnswer {
        let started = monotonicSeconds()
        defer { statistics.observe(RunStatistics.gatewayRecordSeconds, seconds: monotonicSeconds() - started) }
        return try inner.first(orderId: orderId, amount: amount, answer)
    }
}

/// What the clients' loops did, summed when each ends.
struct ClientLoopTotals {
    /// CPU time of the client threads between the start barrier and their last operation.
    var cpuSeconds = 0.0
    /// Times those threads gave up the CPU (waiting for a server) or were made to, meanwhile.
    var contextSwitches = 0
    /// Operations of the client that did most (its slots reach `clients × mostIterations`).
    var mostIterations = 0
}

/// The calling thread's CPU time (user + system) and context switches so far.
struct ThreadUsage {
    let cpuSeconds: Double
    let contextSwitches: Int

    static func now() -> ThreadUsage {
        var usage = rusage()
        // RUSAGE_THREAD (Linux): this thread alone.
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return ThreadUsage(cpuSeconds: 0, contextSwitches: 0) }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ThreadUsage(
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), contextSwitches: usage.ru_nvcsw + usage.ru_nivcsw)
    }
}

/// Pauses a client whose operations keep failing the same way against an unavailable server
/// (a connection refused, Redis down): without it a dead server is hammered at tens of
/// thousands of failures a second. Business refusals and contention (sold out, conflicts,
/// deadlocks, lock timeouts) never pause: they are what scenarios measure.
struct FailureBackoff {
    /// Reasons that say the server is not answering.
    static let unavailable: Set<String> = ["connection_lost", "connection_failed", "redis_error", "database_error", "error"]
    /// Identical failures in a row before the first pause.
    static let tolerated = 3
    static let firstPause = 0.001
    static let longestPause = 0.1

    private var lastReason: String?
    private var repeats = 0

    /// Seconds to wait before the client's next operation.
    mutating func delay(after entry: HistoryEntry) -> Double {
        guard entry.outcome != .ok, let reason = entry.reason, Self.unavailable.contains(reason) else {
            lastReason = nil
            repeats = 0
            return 0
        }
        repeats = reason == lastReason ? repeats + 1 : 1
        lastReason = reason
        guard repeats > Self.tolerated else { return 0 }
        let doublings = min(repeats - Self.tolerated - 1, 16)
        return min(Self.firstPause * Double(1 << doublings), Self.longestPause)
    }
}

final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
    func set(_ value: T) { mutate { $0 = value } }
    func mutate(_ change: (inout T) -> Void) {
        lock.lock()
        change(&stored)
        lock.unlock()
    }
}
