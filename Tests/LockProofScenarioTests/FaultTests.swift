import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// The nemesis: `faults:` validated with positions, refused against servers LockProof did not
/// start, and real faults injected into the throwaway servers with the run's records.
final class FaultTests: XCTestCase {
    private func parse(_ faults: String, workload: String) throws -> Scenario {
        try parse(faults, case: "charge-balance", workload: workload)
    }

    private func parse(_ faults: String, case caseName: String = "charge-balance", strategy: String = "seed", workload: String = "virtual_users: 2, duration: 3s", seed: String = "users: 2") throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: f
            case: \(caseName)
            strategy: \(strategy)
            seed: {\(seed)}
            workload: {\(workload)}
            faults:
            \(faults)
            """, file: "f.yaml")
    }

    private func problems(_ faults: String, case caseName: String = "charge-balance", workload: String = "virtual_users: 2, duration: 3s") -> [String] {
        do {
            _ = try parse(faults, case: caseName, workload: workload)
            return []
        } catch let error as ScenarioValidationError {
            return error.problems.map { "\($0.line):\($0.column): \($0.message)" }
        } catch {
            return ["\(error)"]
        }
    }

    private func problemsWith(strategy: String, _ faults: String) -> [String] {
        do {
            _ = try parse(faults, strategy: strategy)
            return []
        } catch let error as ScenarioValidationError {
            return error.problems.map { "\($0.line):\($0.column): \($0.message)" }
        } catch {
            return ["\(error)"]
        }
    }

    private func assertProblem(_ faults: String, _ fragment: String, case caseName: String = "charge-balance", file: StaticString = #filePath, line: UInt = #line) {
        let found = problems(faults, case: caseName)
        XCTAssertTrue(found.contains { $0.contains(fragment) }, "expected '\(fragment)', got \(found)", file: file, line: line)
    }

    func testFaultsParseWithTheirDefaults() throws {
        let scenario = try parse(
            """
              - {kind: redis-down, start: 1s, duration: 500ms}
              - {kind: pg-terminate, start: 0s, interval: 200ms, duration: 1s, sessions: 3}
              - {kind: client-pause, start: 0.5s}
            """, workload: "virtual_users: 2, duration: 3s, lock: {lease_ms: 500}")
        XCTAssertEqual(scenario.faults.map(\.kind), [.redisDown, .pgTerminate, .clientPause])
        XCTAssertEqual(scenario.faults[0].startSeconds, 1)
        XCTAssertEqual(scenario.faults[0].durationSeconds, 0.5)
        XCTAssertEqual(scenario.faults[1].intervalSeconds, 0.2)
        XCTAssertEqual(scenario.faults[1].parameter("sessions"), 3)
        XCTAssertEqual(scenario.faults[2].parameter("clients"), 1, "defaults are filled in")
        XCTAssertEqual(scenario.faults[2].parameter("pause_ms"), 2_000)
    }

    func testBadFaultsAreRefusedWithFieldAndValue() {
        assertProblem("  - {kind: redis-crash, start: 1s}", "faults[0].kind: found 'redis-crash'; expected one of redis-down")
        assertProblem("  - {kind: redis-down, start: 1s}", "faults[0] (redis-down): missing key 'duration'")
        assertProblem("  - {kind: redis-down, start: 1s, duration: 1s, interval: 100ms}", "'interval' applies to faults that strike repeatedly")
        assertProblem("  - {kind: redis-pause, start: 1s, duration: 2s}", "faults[0].duration: found 2 s; expected longer than the lock lease (5 s")
        assertProblem("  - {kind: client-pause, start: 1s, pause_ms: 100}", "faults[0].pause_ms: found 100; expected longer than the lock lease")
        assertProblem("  - {kind: instance-pause, start: 1s, duration: 2s}", "faults[0].duration: found 2 s; expected longer than the lock lease (5 s")
        assertProblem("  - {kind: instance-kill, start: 1s}", "faults[0] (instance-kill): missing key 'duration'")
        assertProblem("  - {kind: instance-kill, start: 1s, duration: 1s, instance: 0}", "faults[0].instance: found 0")
        assertProblem("  - {kind: crash-after-deduct, start: 1s, duration: 1s}", "crash-after-deduct strikes payments, and the scenario runs none")
        assertProblem("  - {kind: gateway-failure, start: 1s, duration: 1s, failure_rate: 2}", "faults[0].failure_rate: found 2; expected a number in 0…1")
        assertProblem("  - {kind: redis-down, start: 1s, duration: 1s, sessions: 2}", "unknown key 'sessions'")
        assertProblem("  - {kind: redis-down, start: 5s, duration: 1s}", "faults[0].start: found 5 s; the run lasts 3 s")
        assertProblem("  - {kind: redis-failover}\n  - {kind: redis-failover}", "at most one redis-failover")
        assertProblem("  - redis-down", "faults[0]: expected a mapping with 'kind'")
        assertProblem("  - {kind: redis-client-kill, start: 1s, clients: 0}", "faults[0].clients: found 0")
        XCTAssertTrue(
            problemsWith(strategy: "pessimistic", "  - {kind: redis-client-kill, start: 1s}").contains {
                $0.contains("faults[0].kind: redis-client-kill drops the clients' Redis lock connections, and no strategy of this scenario (pessimistic) takes the Redis lock")
            })
    }

    func testServerFaultsAreRefusedAgainstServersLockProofDidNotStart() throws {
        let configuration = TestServers.configuration
        XCTAssertThrowsError(try ManagedServers.check(configuration, faults: [.redisDown], environment: [:])) {
            XCTAssertTrue("\($0)".contains("strikes only servers it started itself"), "\($0)")
        }
        var environment = [
            "LOCKPROOF_MANAGED_REDIS_PORT": String(configuration.redis.port + 1), "LOCKPROOF_MANAGED_REDIS_CONF": "/x/redis.conf",
            "LOCKPROOF_MANAGED_REDIS_PIDFILE": "/x/redis.pid", "LOCKPROOF_MANAGED_PG_PORT": "1",
        ]
        XCTAssertThrowsError(try ManagedServers.check(configuration, faults: [.redisPause], environment: environment)) {
            XCTAssertTrue("\($0)".contains("not the throwaway Redis"), "\($0)")
        }
        environment["LOCKPROOF_MANAGED_REDIS_PORT"] = String(configuration.redis.port)
        XCTAssertThrowsError(try ManagedServers.check(configuration, faults: [.redisDown], environment: environment)) {
            XCTAssertTrue("\($0)".contains("/x/redis.pid holds no pid"), "\($0)")
        }
        XCTAssertNil(try ManagedServers.check(configuration, faults: [.gatewayFailure, .crashAfterDeduct], environment: [:]),
                     "faults inside the clients need no server of ours")
    }

    /// Instance faults need, beyond the throwaway servers, a cluster scripts/cluster.sh started
    /// (LOCKPROOF_MANAGED_CLUSTER_DIR) whose instances file reads; refused before anything runs.
    func testInstanceFaultsAreRefusedWithoutAClusterLockProofStarted() throws {
        var environment = ProcessInfo.processInfo.environment
        environment[ManagedInstances.environmentKey] = nil
        XCTAssertNotNil(ManagedServers.fromEnvironment(environment), "the tests run on throwaway servers (scripts/services.sh)")
        for kind in [FaultKind.instanceKill, .instancePause] {
            XCTAssertThrowsError(try ManagedServers.check(TestServers.configuration, faults: [kind], environment: environment)) {
                XCTAssertTrue("\($0)".contains("fault \(kind.rawValue) strikes serve instances") && "\($0)".contains("names none"), "\($0)")
            }
        }
        let folder = NSTemporaryDirectory() + "lockproof-cluster-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "1 21600 21700\n2 port 21701\n".write(toFile: folder + "/instances", atomically: true, encoding: .utf8)
        environment[ManagedInstances.environmentKey] = folder
        XCTAssertThrowsError(try ManagedServers.check(TestServers.configuration, faults: [.instanceKill], environment: environment)) {
            XCTAssertTrue("\($0)".contains("\(folder)/instances line 2: '2 port 21701' is not 'K API_PORT METRICS_PORT'"), "\($0)")
        }
    }

    /// Issue 15: the pid file is checked against the process table before any signal. One naming
    /// an unrelated `sleep`, or a redis-server that is not the one on the managed port, is refused
    /// by the pre-run check and by every server fault at the moment it strikes (a pid file swapped
    /// during the run); the process is not signalled and no redis-server is started from the
    /// config. (Old code: redis-down killed the sleep and reported Redis stopped and started again.)
    func testAPidFileNamingAnotherProcessIsRefusedAndNeverSignalled() throws {
        let configuration = TestServers.configuration
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-pidfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let sleep = Process()
        sleep.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleep.arguments = ["300"]
        try sleep.run()
        defer { sleep.terminate() }
        let spare = SpareRedis()
        try spare.start()
        defer { spare.stop() }
        let pidFile = folder.appendingPathComponent("redis.pid").path
        // A config that, if anything started a redis-server from it, would leave its log here.
        let log = folder.appendingPathComponent("redis.log").path
        let config = folder.appendingPathComponent("redis.conf").path
        try "port \(configuration.redis.port)\nbind 127.0.0.1\ndaemonize yes\npidfile \(pidFile)\nlogfile \(log)\nsave \"\"\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let environment = [
            "LOCKPROOF_MANAGED_REDIS_PORT": String(configuration.redis.port), "LOCKPROOF_MANAGED_REDIS_CONF": config,
            "LOCKPROOF_MANAGED_REDIS_PIDFILE": pidFile, "LOCKPROOF_MANAGED_PG_PORT": "1",
            "LOCKPROOF_MANAGED_REDIS_REPLICA_PORT": String(spare.port),
        ]
        let servers = try XCTUnwrap(ManagedServers.fromEnvironment(environment))
        let context = FaultContext(
            configuration: configuration, shared: TestServers.shared, servers: servers,
            gateway: SimulatedPaymentGateway(
                failureRate: 0, seed: 1, records: try DatabaseGatewayRecords(databaseURL: configuration.databaseURL)),
            clients: ClientFaultSwitches(seed: 1), clock: { 0 })
        let impostors: [(pid: Int32, expected: String)] = [
            (sleep.processIdentifier, "which is not a redis-server (it runs '/bin/sleep 300')"),
            (try XCTUnwrap(spare.pid), "a redis-server that does not listen on port \(configuration.redis.port)"),
        ]
        for impostor in impostors {
            try "\(impostor.pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ManagedServers.check(configuration, faults: [.redisDown], environment: environment)) {
                XCTAssertTrue("\($0)".contains("\(pidFile) names pid \(impostor.pid), \(impostor.expected)"), "\($0)")
            }
            for kind in [FaultKind.redisDown, .redisPause, .redisFailover] {
                let spec = FaultSpec(kind: kind, startSeconds: 0, durationSeconds: 1, intervalSeconds: nil, parameters: ["lag_ms": 10])
                let injector = kind.injector.init(spec: spec, context: context)
                var record = FaultRecord(kind: kind.rawValue, start: 0, end: nil, targets: [], hits: nil, note: nil, error: nil)
                XCTAssertThrowsError(try injector.begin(into: &record), kind.rawValue) {
                    XCTAssertTrue("\($0)".contains("names pid"), "\(kind.rawValue): \($0)")
                }
                injector.restore()
            }
            XCTAssertEqual(kill(impostor.pid, 0), 0, "pid \(impostor.pid) was not killed")
            XCTAssertTrue(sleep.isRunning)
            XCTAssertFalse(FileManager.default.fileExists(atPath: log), "no redis-server was started from the config")
            XCTAssertEqual(try TestServers.redis().checked(["PING"]).text, "PONG", "the real Redis was never touched")
        }
        XCTAssertEqual(try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: spare.port)).checked(["PING"]).text, "PONG")
    }

    private func run(_ scenario: Scenario) throws -> ScenarioResult {
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        return try runner.run(scenario)
    }

    /// Crashes after the deduction leave open intents; recovery compensates each exactly once and
    /// the checkers find money and stock conserved.
    func testCrashesAfterTheDeductionAreRecoveredAndReported() throws {
        let scenario = try parse(
            "  - {kind: crash-after-deduct, start: 0s, duration: 30s, rate: 0.5}", case: "process-payment",
            workload: "virtual_users: 4, iterations: 10, pick: per-client", seed: "users: 2, balance: 1000000, orders: 40")
        let result = try run(scenario)
        XCTAssertNil(result.runError)
        let crashes = result.operations.reasons["client_crashed"] ?? 0
        XCTAssertGreaterThan(crashes, 0)
        XCTAssertEqual(result.operations.unknown, crashes, "a crashed client cannot know: unknown")
        XCTAssertEqual(result.faults.first?.kind, "crash-after-deduct")
        XCTAssertEqual(result.faults.first?.hits, crashes)
        XCTAssertEqual(result.recovery?.interrupted, crashes)
        XCTAssertEqual(result.recovery?.compensated, crashes)
        XCTAssertEqual(result.recovery?.stillOpen, 0)
        XCTAssertTrue(result.checks.allSatisfy(\.passed), "\(result.checks)")
    }

    /// A fault scheduled after the run's end never struck: that is an error, not a pass.
    func testAFaultThatNeverStruckFailsTheRun() throws {
        let scenario = try parse(
            "  - {kind: crash-after-deduct, start: 20s, duration: 1s}", case: "process-payment",
            workload: "virtual_users: 1, iterations: 1", seed: "users: 1, balance: 100000, orders: 1")
        let result = try run(scenario)
        XCTAssertFalse(result.passed)
        XCTAssertTrue(result.runError?.contains("never struck") == true, result.runError ?? "nil")
    }

    /// Redis really stops mid-run: the breaker opens, charges go on under the database's version
    /// check, Redis comes back, and nothing acknowledged is lost.
    func testRedisDownOpensTheBreakerAndTheSeedLosesNothing() throws {
        guard ManagedServers.fromEnvironment() != nil else {
            throw XCTSkip("needs the throwaway servers of make test (LOCKPROOF_MANAGED_*)")
        }
        let scenario = try parse(
            "  - {kind: redis-down, start: 300ms, duration: 1s}",
            workload: "virtual_users: 4, duration: 2s, think_ms: 1", seed: "users: 2")
        let result = try run(scenario)
        XCTAssertNil(result.runError)
        XCTAssertGreaterThanOrEqual(result.circuitBreaker?.openings ?? 0, 1)
        XCTAssertGreaterThan(result.circuitBreaker?.bypassed ?? 0, 0)
        // The summary says which openings it counts (from closed; a failed probe's reopening apart).
        let summary = ReportWriter.summary(result)
        XCTAssertTrue(summary.contains("redis circuit breaker: opened \(result.circuitBreaker?.openings ?? 0)× from closed"), summary)
        XCTAssertTrue(result.faults.first?.targets.first?.contains("stopped") == true, "\(result.faults)")
        XCTAssertNotNil(result.faults.first?.end)
        XCTAssertTrue(result.checks.allSatisfy(\.passed), "\(result.checks)")
        XCTAssertEqual(try TestServers.redis().checked(["PING"]).text, "PONG", "Redis is back for whatever runs next")
    }

    /// Redis drops one client's lock connection at a time: each drop is one failed command (the
    /// charge falls back to the database), the next command reconnects, and the successes in
    /// between keep a breaker that counts consecutive failures closed. The fault's own connection
    /// and the run's other connections (unnamed) are never struck.
    func testRedisClientKillDropsNamedClientsAndIsolatedDropsNeverOpenTheBreaker() throws {
        guard ManagedServers.fromEnvironment() != nil else {
            throw XCTSkip("needs the throwaway servers of make test (LOCKPROOF_MANAGED_*)")
        }
        let scenario = try parse(
            "  - {kind: redis-client-kill, start: 200ms, interval: 150ms, duration: 1s}",
            workload: "virtual_users: 8, duration: 1500ms, think_ms: 1, lock: {lease_ms: 300}, breaker: {failure_threshold: 3}",
            seed: "users: 32")
        let result = try run(scenario)
        XCTAssertNil(result.runError)
        let strikes = result.faults.filter { $0.kind == "redis-client-kill" }
        XCTAssertGreaterThanOrEqual(strikes.count, 5, "\(result.faults)")
        XCTAssertTrue(strikes.allSatisfy { $0.hits == 1 && $0.targets.first?.hasPrefix("redis client id ") == true }, "\(strikes)")
        XCTAssertGreaterThan(
            result.statistics.count(RunStatistics.redisLockBypassed), 0, "a dropped connection's command failed and fell back")
        XCTAssertEqual(result.circuitBreaker?.openings, 0, "isolated drops between successes never open the breaker")
        XCTAssertTrue(result.checks.allSatisfy(\.passed), "\(result.checks)")
    }

    func testClientListIsReadForTheNamedConnectionsOnly() {
        let list = """
            id=3 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name= age=1 cmd=client|list
            id=7 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=9 name=lockproof-client age=1 cmd=evalsha
            id=9 addr=127.0.0.1:5002 laddr=127.0.0.1:6379 fd=10 name=lockproof-client-x age=1 cmd=get
            id=12 addr=127.0.0.1:5003 laddr=127.0.0.1:6379 fd=11 name=lockproof-client age=0 cmd=NULL

            """
        XCTAssertEqual(RedisClientKillFault.clientIDs(in: list, named: "lockproof-client"), ["7", "12"])
        XCTAssertEqual(RedisClientKillFault.clientIDs(in: "", named: "lockproof-client"), [])
    }

    /// Jepsen's :info: a payment whose client died may or may not have taken the money. One that
    /// did (the order ended PAID) and one that did not (compensated) are both accepted.
    func testUnknownPaymentsThatDidAndDidNotApplyAreBothAccepted() throws {
        let db = try TestServers.database()
        try Schema.reset(db)
        let data = SeedData(db: db)
        let user = try data.users(count: 1, balance: 10_000)[0]
        let product = try data.products(count: 1, price: 1_000, stock: 10)[0]
        var orders: [Int] = []
        for _ in 0..<2 {
            let id = try db.query("INSERT INTO orders (user_id, status, total_amount) VALUES ($1, 'PENDING', 1000) RETURNING id", [user]).int(0, 0)!
            try db.query("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, 1, 1000)", [id, product])
            orders.append(id)
        }
        let gateway = SimulatedPaymentGateway(failureRate: 0, seed: 1, records: try DatabaseGatewayRecords(databaseURL: TestServers.configuration.databaseURL))
        let client = try TestServers.client(gateway: gateway)
        gateway.behaviour.timeoutRate = 1
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orders[0]))  // charged, never answered
        gateway.behaviour.timeoutRate = 0
        client.faults.afterDeduction = { _ in throw ClientCrashed(point: "test") }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orders[1]))  // died before the gateway
        let report = try PaymentRecovery.run(client: client)
        XCTAssertEqual(report.markedPaid, 1)
        XCTAssertEqual(report.compensated, 1)
        XCTAssertEqual(try db.query("SELECT balance FROM users WHERE id = $1", [user]).int(0, 0), 9_000, "one applied, one did not")

        let history = orders.enumerated().map { index, order in
            HistoryEntry(
                client: index, index: 0, operation: .pay, arguments: ["order": order], items: nil, start: 0, end: 1,
                outcome: .unknown, reason: index == 0 ? "gateway_timeout" : "client_crashed", result: nil)
        }
        let scenario = try parse("  []", case: "process-payment", workload: "virtual_users: 2, iterations: 1", seed: "users: 1, orders: 2")
        var initial = InitialState()
        initial.users = [user]
        initial.products = [product]
        initial.orders = orders
        initial.balances = [user: 10_000]
        initial.stock = [product: 10]
        let context = CheckContext(scenario: scenario, initial: initial, db: db, statistics: RunStatistics())
        for checker in checkers(for: scenario) {
            for entry in history where checker.operations.contains(entry.operation) { checker.observe(entry) }
            let result = try checker.check(context)
            XCTAssertTrue(result.passed, "\(checker.name): \(result.violations)")
        }
    }
}
