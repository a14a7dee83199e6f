import Foundation
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// Faults through a target (issue 18, `Target/TargetFaults.swift`): scenarios run by the runner
/// through targets/lockproof-serve.yaml against a real cluster of built `lockproof serve`
/// processes (`scripts/cluster.sh`) on a database of their own on the throwaway PostgreSQL, the
/// nemesis striking the throwaway Redis, the target database's sessions or an instance, and the
/// verdict read from the target's own database. Each seed run has its control: the broken design
/// caught by the checker of the invariant it breaks, or the fault refused with the reason.
extension InstanceFaultTests {
    /// The instances' database, `<tests' database>_serve_faults`, with LockProof's schema and
    /// nothing in it; LOCKPROOF_SERVE_DATABASE_URL names it for the target file.
    private func serveDatabase() throws -> String {
        let url = try TestServers.siblingDatabase("serve_faults")
        setenv("LOCKPROOF_SERVE_DATABASE_URL", url, 1)
        addTeardownBlock { unsetenv("LOCKPROOF_SERVE_DATABASE_URL") }
        return url
    }

    private static var serveTarget: Target {
        get throws { try TargetParser.load(path: Repository.root.appendingPathComponent("targets/lockproof-serve.yaml").path) }
    }

    /// `instances` serve processes running `serveOptions` on their own database; the scenario run
    /// through them by the runner (its own claim on the tests' database), with the cluster.
    /// `shares`: how many base URLs name each instance (round-robin gives each URL as many
    /// virtual users); default one each.
    private func runThroughServe(
        _ scenario: Scenario, instances: Int, serveOptions: [String] = [], shares: [Int]? = nil
    ) throws -> (ScenarioResult, Cluster) {
        try TestServers.reset()
        let database = try serveDatabase()
        let cluster = try startCluster(instances, serveOptions: serveOptions, databaseURL: database)
        let urls = zip(cluster.apiPorts, shares ?? cluster.apiPorts.map { _ in 1 }).flatMap { port, share in
            Array(repeating: "http://127.0.0.1:\(port)", count: share)
        }
        setenv("LOCKPROOF_SERVE_URLS", urls.joined(separator: " "), 1)
        addTeardownBlock { unsetenv("LOCKPROOF_SERVE_URLS") }
        let runner = ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.target = try Self.serveTarget
        let result = try runner.run(scenario)
        let verdicts = result.checks.map { "\($0.name) \($0.passed ? "pass" : "FAIL (\($0.violations.map(\.name).joined(separator: ",")))")" }
        print("\(scenario.name) through \(instances) serve \(serveOptions.joined(separator: " ")): \(verdicts.joined(separator: "; ")); faults \(result.faults.map { "\($0.kind) \($0.targets)" }); error \(result.runError ?? "none")")
        XCTAssertNil(result.runError, "the run broke, it proves nothing")
        XCTAssertEqual(result.target, "lockproof-serve")
        XCTAssertFalse(result.faults.isEmpty, "no fault struck")
        return (result, cluster)
    }

    private static func shipped(_ name: String) throws -> Scenario {
        try ScenarioParser.load(path: Repository.root.appendingPathComponent("Scenarios/\(name).yaml").path)
    }

    private static func check(_ result: ScenarioResult, _ name: String) throws -> CheckResult {
        try XCTUnwrap(result.checks.first { $0.name == name }, "\(name) did not judge: \(result.checks.map(\.name))")
    }

    // MARK: redis-down through serve

    /// The seed's design: the circuit breaker falls back to the database locks while Redis is
    /// down; every invariant holds, judged from serve's own database.
    func testRedisDownThroughServeTheSeedDesignPasses() throws {
        let (result, _) = try runThroughServe(try Self.shipped("fault-redis-down-charge-pay-seed"), instances: 1)
        let money = try Self.check(result, "money-conservation")
        XCTAssertTrue(money.passed, "\(money.violations.prefix(3))")
        XCTAssertNil(money.notChecked)
        XCTAssertTrue(result.passed, "\(result.checks.filter { !$0.passed }.map(\.name))")
        XCTAssertTrue(result.faults.contains { $0.kind == "redis-down" && $0.error == nil })
    }

    /// The control: the Redis-lock-only design (`charge-balance=redis-lock`) has no database lock
    /// to fall back on; the same scenario through it is caught by money-conservation.
    func testRedisDownThroughServeCatchesTheRedisLockOnlyDesign() throws {
        let (result, _) = try runThroughServe(
            try Self.shipped("fault-redis-down-charge-pay-seed"), instances: 1, serveOptions: ["--strategy", "charge-balance=redis-lock"])
        let money = try Self.check(result, "money-conservation")
        XCTAssertFalse(money.passed, "the Redis-lock-only design lost nothing while Redis was down: the fault proved nothing")
        XCTAssertFalse(result.passed, "a seed scenario (expect: pass) against a broken design must fail")
    }

    // MARK: pg-terminate through serve

    /// pg-terminate cuts serve's sessions on the target's database (not LockProof's own claim):
    /// the fault names the sessions it terminated, and coupons stay within bounds.
    func testPgTerminateThroughServeOnTheManagedPostgresPasses() throws {
        let (result, _) = try runThroughServe(try Self.shipped("fault-pg-terminate-coupon-seed"), instances: 1)
        let terminated = result.faults.filter { $0.kind == "pg-terminate" }.flatMap(\.targets)
        XCTAssertFalse(terminated.isEmpty, "no session of the target's database was terminated: \(result.faults)")
        XCTAssertTrue(result.faults.allSatisfy { $0.error == nil }, "\(result.faults)")
        let coupons = try Self.check(result, "coupon-quantity")
        XCTAssertTrue(coupons.passed, "\(coupons.violations.prefix(3))")
        XCTAssertTrue(result.passed)
    }

    /// The control: a target database on another PostgreSQL (not the throwaway one) is refused
    /// with the reason, before anything is reset or seeded; the fit check says the same.
    func testPgTerminateThroughATargetOffTheManagedPostgresIsRefusedWithTheReason() throws {
        let scenario = try Self.shipped("fault-pg-terminate-coupon-seed")
        let target = try Self.serveTarget
        let elsewhere = "postgresql://lockproof@127.0.0.1:1/elsewhere"
        let refusals = target.faultRefusals(
            scenario, configuration: TestServers.configuration,
            environment: ProcessInfo.processInfo.environment.merging([
                "LOCKPROOF_SERVE_DATABASE_URL": elsewhere, "LOCKPROOF_SERVE_URLS": "http://127.0.0.1:1",
            ]) { $1 })
        XCTAssertEqual(refusals.count, 1, "\(refusals)")
        XCTAssertTrue(
            refusals.first?.contains("fault pg-terminate: the target's database (database.url_env) does not name the throwaway PostgreSQL") == true,
            "\(refusals)")
        // The positive side of the same check: on the managed PostgreSQL nothing is refused.
        let onManaged = try TestServers.withDatabase(TestServers.configuration.databaseURL, "any_target")
        XCTAssertEqual(
            target.faultRefusals(
                scenario, configuration: TestServers.configuration,
                environment: ProcessInfo.processInfo.environment.merging(["LOCKPROOF_SERVE_DATABASE_URL": onManaged]) { $1 }),
            [])

        // Through the runner: refused before the target's database is even opened.
        setenv("LOCKPROOF_SERVE_DATABASE_URL", elsewhere, 1)
        setenv("LOCKPROOF_SERVE_URLS", "http://127.0.0.1:1", 1)
        defer {
            unsetenv("LOCKPROOF_SERVE_DATABASE_URL")
            unsetenv("LOCKPROOF_SERVE_URLS")
        }
        let runner = ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.target = target
        XCTAssertThrowsError(try runner.run(scenario)) {
            XCTAssertTrue("\($0)".contains("refused through the target lockproof-serve: fault pg-terminate"), "\($0)")
        }
    }

    // MARK: instance-pause through serve

    /// Charges on one hot user from 8 virtual users, 6 through instance 1 and 2 through instance 2
    /// (0.2 s between read and write). Instance 1 is frozen four times for 6.5 s, past the 5 s
    /// lease; a pause that finds it holding the lock (about half of them) lets instance 2 in, and
    /// instance 1 wakes believing it still holds it. `runPausesMeetingAHolder` reruns a run whose
    /// four pauses all missed.
    private static let pauseScenario = """
        name: target-instance-pause
        case: charge-balance
        strategy: seed
        seed: {users: 1, balance: 0}
        workload: {virtual_users: 8, duration: 33s, start: barrier, pick: random, amount: 1, random_seed: 5, timeout: 120s}
        faults:
          - {kind: instance-pause, start: 1s, duration: 6.5s, instance: 1}
          - {kind: instance-pause, start: 9s, duration: 6.5s, instance: 1}
          - {kind: instance-pause, start: 17s, duration: 6.5s, instance: 1}
          - {kind: instance-pause, start: 25s, duration: 6.5s, instance: 1}
        expect: pass
        """

    private static let pauseServeOptions = ["--processing-delay", "0.2", "--workers", "16", "--connections", "8"]

    /// Runs the pause scenario through 2 instances until a pause meets instance 1 holding the hot
    /// lock, at most `attempts` times; returns that run (or the last). Which instance holds the
    /// lock when SIGSTOP lands is about even, not 3 to 1 as the shares suggest (measured: in 28
    /// pauses instance 2 went on charging for the whole pause 12 times; only the other 16 met a
    /// holder), so all four pauses of a run miss about once in 16 runs, and such a run proves
    /// nothing either way. `metHolder` reads, from instance 1's own /metrics, whether one did.
    private func runPausesMeetingAHolder(
        strategy: [String], shares: [Int], attempts: Int = 3, metHolder: (Cluster) -> Bool
    ) throws -> (ScenarioResult, Cluster, met: Bool) {
        var attempt = 0
        while true {
            attempt += 1
            let (result, cluster) = try runThroughServe(
                try ScenarioParser.parse(Self.pauseScenario, file: "target-instance-pause.yaml"), instances: 2,
                serveOptions: Self.pauseServeOptions + strategy, shares: shares)
            let met = metHolder(cluster)
            if met || attempt == attempts { return (result, cluster, met) }
            print("target-instance-pause: no pause met instance 1 holding the lock (attempt \(attempt) of \(attempts)); again")
            stopCluster(cluster, databaseURL: ProcessInfo.processInfo.environment["LOCKPROOF_SERVE_DATABASE_URL"])
        }
    }

    /// The seed's design (Redis lock + version check): the woken instance's stale write fails the
    /// version check and is retried; nothing is lost. The pauses are shown to have met a lock
    /// holder by the optimistic conflicts instance 1 counted.
    func testInstancePauseThroughServeTheSeedDesignLosesNothing() throws {
        let (result, _, met) = try runPausesMeetingAHolder(strategy: [], shares: [3, 1]) {
            Self.metricSum(port: $0.metricsPorts[0], name: "lockproof_optimistic_conflicts_total") > 0
        }
        XCTAssertTrue(met, "no pause met a lock holder in 3 runs: the fault proved nothing")
        XCTAssertEqual(result.faults.filter { $0.kind == "instance-pause" && $0.error == nil }.count, 4, "\(result.faults)")
        let money = try Self.check(result, "money-conservation")
        XCTAssertTrue(money.passed, "\(money.violations.prefix(3))")
        XCTAssertTrue(result.passed)
    }

    /// The control: the Redis lock alone (`redis-lock`): the woken instance writes back a stale
    /// balance, an update is lost, and money-conservation says so from serve's database. A pause
    /// met a holder when instance 1 counted a lock lost (its lease ran out while it was frozen).
    func testInstancePauseThroughServeCatchesTheRedisLockOnlyDesign() throws {
        let (result, _, met) = try runPausesMeetingAHolder(strategy: ["--strategy", "charge-balance=redis-lock"], shares: [3, 1]) {
            Self.metricSum(port: $0.metricsPorts[0], name: "lockproof_distributed_lock_lost_total") > 0
        }
        XCTAssertTrue(met, "no pause met a lock holder in 3 runs: the control proved nothing")
        let money = try Self.check(result, "money-conservation")
        XCTAssertFalse(money.passed, "the Redis-lock-only design lost no update although a pause met a lock holder")
        XCTAssertFalse(result.passed)
    }
}

/// `target:` in a scenario file, run by the built `lockproof verify` (issue 18): the file runs
/// through the target it names (a path relative to it) without --target, and its JSON report names
/// the target. The control: the same file through serve running the naive design fails on
/// money-conservation, which in process (seed strategy) it would not: it did go through the target.
extension InstanceFaultTests {
    private static let chargeThroughTarget = """
        name: charge-through-its-target
        case: charge-balance
        strategy: seed
        target: ../targets/lockproof-serve.yaml
        seed: {users: 2, balance: 0}
        workload: {virtual_users: 8, iterations: 15, start: barrier, pick: random, amount: 100, random_seed: 3, timeout: 60s}
        expect: pass
        """

    /// A folder with a copy of targets/lockproof-serve.yaml and `scenarios/charge.yaml` naming it.
    private func scenarioNamingItsTarget() throws -> (folder: URL, scenario: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-target-in-scenario-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("targets"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("scenarios"), withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(
            at: Repository.root.appendingPathComponent("targets/lockproof-serve.yaml"),
            to: folder.appendingPathComponent("targets/lockproof-serve.yaml"))
        let scenario = folder.appendingPathComponent("scenarios/charge.yaml").path
        try Self.chargeThroughTarget.write(toFile: scenario, atomically: true, encoding: .utf8)
        return (folder, scenario)
    }

    private func verifyThroughServe(_ serveOptions: [String]) throws -> (Launched, [String: Any]?) {
        try TestServers.reset()
        let database = try serveDatabase()
        let cluster = try startCluster(1, serveOptions: serveOptions, databaseURL: database)
        let (folder, scenario) = try scenarioNamingItsTarget()
        let reports = folder.appendingPathComponent("reports")
        let result = try launch(
            try BuiltBinary.lockproof(), ["verify", "--quiet", "--report-dir", reports.path, scenario],
            environment: TestServers.binaryEnvironment.merging([
                "LOCKPROOF_SERVE_URLS": "http://127.0.0.1:\(cluster.apiPorts[0])", "LOCKPROOF_SERVE_DATABASE_URL": database,
            ]) { $1 }, timeoutSeconds: 180)
        let json = try? Data(contentsOf: reports.appendingPathComponent("charge-through-its-target.json"))
        return (result, json.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
    }

    private static func failedChecks(_ report: [String: Any]) -> [String] {
        ((report["checks"] as? [[String: Any]]) ?? []).filter { ($0["passed"] as? Bool) == false }.compactMap { $0["name"] as? String }
    }

    func testAScenarioNamingItsTargetRunsThroughItAndItsReportNamesIt() throws {
        let (result, report) = try verifyThroughServe([])
        XCTAssertEqual(result.status, 0, result.out + result.err)
        let json = try XCTUnwrap(report, "no report: \(result.err)")
        XCTAssertEqual(json["target"] as? String, "lockproof-serve")
        XCTAssertEqual(json["status"] as? String, "pass")
        XCTAssertEqual(Self.failedChecks(json), [])
    }

    func testAScenarioNamingItsTargetIsJudgedByTheTargetsDesign() throws {
        let (result, report) = try verifyThroughServe(["--strategy", "charge-balance=naive"])
        XCTAssertEqual(result.status, 1, result.out + result.err)
        let json = try XCTUnwrap(report, "no report: \(result.err)")
        XCTAssertEqual(json["target"] as? String, "lockproof-serve")
        XCTAssertEqual(json["status"] as? String, "fail")
        XCTAssertTrue(Self.failedChecks(json).contains("money-conservation"), "\(Self.failedChecks(json))")
    }
}
