import Foundation
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// The event-driven engine of target runs (issue 18). `TargetEventClient` against the canned socket
/// server of `TargetClientTests` (the same completions as the blocking client, one kept-alive
/// connection, timeouts `unknown`, a refused port `fail`), then whole runs against a real
/// `lockproof serve`: thousands of virtual users on a handful of threads, and the same verdicts
/// as the thread-per-user engine, a broken design still caught.
final class TargetEventClientTests: XCTestCase {
    private func target(requestTimeout: String = "1s") throws -> Target { try cannedTarget(requestTimeout: requestTimeout) }

    private let create = cannedCreate

    /// Runs `count` invocations one after the other on an event loop of this thread; a completion
    /// that never comes fails the test when the loop gives up after `limit` seconds.
    private func invoke(_ client: TargetEventClient, on loop: EventLoop, count: Int, limit: Double = 10) -> [Completion] {
        var completions: [Completion] = []
        func next() {
            client.start(create) { completion in
                completions.append(completion)
                if completions.count < count { next() }
            }
        }
        next()
        let giveUp = monotonicSeconds() + limit
        loop.run(until: { completions.count == count || monotonicSeconds() > giveUp }, tick: {})
        return completions
    }

    /// `count` invocations, one after the other, by an event client of `port` on a loop of this thread.
    private func completions(port: Int, count: Int, requestTimeout: String = "1s") throws -> [Completion] {
        let loop = try EventLoop()
        let client = TargetEventClient(TargetClient(target: try target(requestTimeout: requestTimeout), baseURL: "http://127.0.0.1:\(port)"))
        try client.open(on: loop)
        defer { client.close() }
        return invoke(client, on: loop, count: count)
    }

    func testResponsesMapToTheHistoryAsTheBlockingClientsDoOnOneKeptAliveConnection() throws {
        let server = try CannedServer(cannedAnswers)
        defer { server.stop() }
        try assertCannedExchange(try completions(port: server.port, count: 5), server)
    }

    func testASilentServerIsUnknownAtTheRequestTimeout() throws {
        let server = try CannedServer([])  // accepts, reads, never answers
        defer { server.stop() }
        XCTAssertEqual(
            try completions(port: server.port, count: 1, requestTimeout: "300ms"), [Completion(outcome: .unknown, reason: "timeout", result: nil)])
    }

    func testARefusedPortIsAFailureNothingWasSent() throws {
        let server = try CannedServer([])
        server.stop()  // nothing listens there any more
        XCTAssertEqual(
            try completions(port: server.port, count: 2), Array(repeating: Completion(outcome: .error, reason: "connection_failed", result: nil), count: 2))
    }

    // MARK: Whole runs against a real `lockproof serve`

    /// The database of the tests' serve, made the first time (LockProof's schema: serve makes it).
    private func serveDatabase() throws -> String {
        let admin = try TestServers.database()
        let name = (try admin.query("SELECT current_database()").string(0, 0) ?? "lockproof") + "_evloop"
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rowCount == 0 {
            try admin.execute(try admin.query("SELECT format('CREATE DATABASE %I', $1::text)", [name]).string(0, 0)!)
        }
        return try TestServers.withDatabase(TestServers.configuration.databaseURL, name)
    }

    /// A `lockproof serve` (the built binary, `options` for its design) on a database of its own,
    /// stopped at the end of the test; the target file `targets/lockproof-serve.yaml` pointed at it.
    private func startServe(_ options: [String] = []) throws -> (Target, stop: () -> Void) {
        let databaseURL = try serveDatabase()
        let port = ProcessInfo.processInfo.environment["SERVE_PORT"].flatMap(Int.init) ?? 28_700
        let process = Process()
        process.executableURL = try BuiltBinary.lockproof()
        process.arguments = ["serve", "--api-address", "127.0.0.1:\(port)", "--metrics-address", "127.0.0.1:\(port + 100)",
                             "--workers", "64", "--connections", "16"] + options
        process.environment = ProcessInfo.processInfo.environment.merging(TestServers.binaryEnvironment) { $1 }
            .merging(["LOCKPROOF_DATABASE_URL": databaseURL]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let lines = LineReader(output.fileHandleForReading)
        try process.run()
        let stop = {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
        addTeardownBlock { stop() }
        guard lines.nextLine(containing: "metrics: ", timeoutSeconds: 60) != nil else {
            XCTFail("serve did not start")
            throw LineReader.NoLine()
        }
        setenv("LOCKPROOF_SERVE_URLS", "http://127.0.0.1:\(port)", 1)
        setenv("LOCKPROOF_SERVE_DATABASE_URL", databaseURL, 1)
        return (try TargetParser.load(path: Repository.root.appendingPathComponent("targets/lockproof-serve.yaml").path), stop)
    }

    private func chargeScenario(virtualUsers: Int, iterations: Int) throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: evloop-charge
            case: charge-balance
            strategy: seed
            seed: {users: 20, balance: 100000}
            workload: {virtual_users: \(virtualUsers), iterations: \(iterations), start: barrier, pick: random, amount: 100, random_seed: 5, timeout: 120s}
            expect: pass
            """, file: "evloop-charge.yaml")
    }

    private func run(_ scenario: Scenario, through target: Target, engine: Target.ClientEngine) throws -> ScenarioResult {
        var target = target
        target.clientEngine = engine
        var runner = ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.target = target
        return try runner.run(scenario)
    }

    /// The most threads this process had while `work` ran (/proc/self/task, sampled every 10 ms).
    private func peakThreads(during work: () throws -> Void) rethrows -> (before: Int, peak: Int) {
        @Sendable func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        let before = threads()
        let peak = LockedValue(before)
        let done = LockedValue(false)
        let sampler = Thread {
            while !done.value {
                let now = threads()
                peak.mutate { $0 = max($0, now) }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        sampler.start()
        defer { done.set(true) }
        try work()
        return (before, peak.value)
    }

    func testTwoThousandVirtualUsersRunOnAFewThreads() throws {
        let (target, _) = try startServe()
        let scenario = try chargeScenario(virtualUsers: 2_000, iterations: 2)
        var result: ScenarioResult?
        let threads = try peakThreads { result = try run(scenario, through: target, engine: .events) }
        let finished = try XCTUnwrap(result)
        XCTAssertNil(finished.runError)
        XCTAssertEqual(finished.operations.total, 4_000, "every virtual user's two charges completed and recorded")
        // One loop thread and the sampler; the rest is the process's own (Dispatch, the run's helpers).
        XCTAssertLessThan(threads.peak - threads.before, 40, "threads before \(threads.before), peak \(threads.peak)")
    }

    /// The target file pointed at a port nothing listens on (its database is the tests' serve's:
    /// `startServe` made its schema earlier in this process, or makes it now).
    private func refusingTarget() throws -> Target {
        let (target, stop) = try startServe()
        stop()
        return target
    }

    private func refusedScenario(duration: String) throws -> Scenario {
        try ScenarioParser.parse(
            """
            name: evloop-refused
            case: charge-balance
            strategy: seed
            seed: {users: 4, balance: 0}
            workload: {virtual_users: 4, duration: \(duration), start: barrier, pick: random, amount: 100, random_seed: 5, timeout: 30s}
            expect: pass
            """, file: "evloop-refused.yaml")
    }

    /// Against a dead server every request is `fail` (`connection_failed`), and `FailureBackoff`
    /// pauses each user (loop timers): its pauses (1 ms doubling to 100 ms) leave a user at most
    /// about 20 requests in a second, where without them it makes thousands. Both engines alike.
    func testADeadServerIsFailedAndBackedOffByBothEngines() throws {
        let target = try refusingTarget()
        let scenario = try refusedScenario(duration: "1s")
        for engine in Target.ClientEngine.allCases {
            let result = try run(scenario, through: target, engine: engine)
            XCTAssertNil(result.runError, "\(engine)")
            XCTAssertEqual(result.operations.ok + result.operations.unknown, 0, "\(engine): \(result.operations)")
            XCTAssertEqual(Set(result.operations.reasons.keys), ["connection_failed"], "\(engine)")
            XCTAssertGreaterThan(result.operations.fail, 4 * 3, "\(engine): each user fails its first three at once")
            XCTAssertLessThan(result.operations.fail, 4 * 40, "\(engine): backed off, \(result.operations)")
        }
    }

    /// A stop request ends a run whose users wait out pauses at once (within the grace): interrupted, not abandoned.
    func testAStopEndsPausedUsersWithinTheGrace() throws {
        let target = try refusingTarget()
        var eventTarget = target
        eventTarget.clientEngine = .events
        var runner = ScenarioRunner(configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.target = eventTarget
        let stop = runner.stop
        let stopper = Thread {
            Thread.sleep(forTimeInterval: 1)
            stop.request("SIGINT")
        }
        stopper.start()
        let result = try runner.run(try refusedScenario(duration: "60s"))
        XCTAssertTrue(result.interrupted, "\(String(describing: result.runError))")
        XCTAssertFalse(result.clientsAbandoned, "every user ended within the grace")
    }

    /// Thousands of virtual users are a scenario's to ask for (10000 at most), not a parse error.
    func testAScenarioMayAskForTenThousandVirtualUsersAndNoMore() throws {
        XCTAssertEqual(try chargeScenario(virtualUsers: 10_000, iterations: 1).workload.virtualUsers, [10_000])
        XCTAssertThrowsError(try chargeScenario(virtualUsers: 10_001, iterations: 1)) { error in
            let problems = (error as? ScenarioValidationError)?.problems.map(\.description) ?? []
            XCTAssertTrue(
                problems.contains { $0.contains("workload.virtual_users: found 10001; expected a whole number in 1…10000") }, "\(problems)")
        }
    }

    /// The control of the bound above: the thread-per-user engine, at far fewer users, exceeds it.
    func testTheThreadedEngineNeedsAThreadPerUser() throws {
        let (target, _) = try startServe()
        let scenario = try chargeScenario(virtualUsers: 200, iterations: 2)
        var result: ScenarioResult?
        let threads = try peakThreads { result = try run(scenario, through: target, engine: .threads) }
        XCTAssertEqual(try XCTUnwrap(result).operations.total, 400)
        XCTAssertGreaterThanOrEqual(threads.peak - threads.before, 200, "threads before \(threads.before), peak \(threads.peak)")
    }

    /// The shipped seed scenario through serve's seed design passes through both engines; through
    /// the naive design (no lock) both fail it by money-conservation.
    func testBothEnginesGiveTheSameVerdictsAndCatchABrokenDesign() throws {
        let scenario = try ScenarioParser.load(path: Repository.root.appendingPathComponent("Scenarios/charge-balance-seed.yaml").path)
        var verdicts: [String] = []
        for design in ["seed", "charge-balance=naive"] {
            let (target, stop) = try startServe(design == "seed" ? [] : ["--strategy", design])
            for engine in Target.ClientEngine.allCases {
                let result = try run(scenario, through: target, engine: engine)
                XCTAssertNil(result.runError, "\(design), \(engine)")
                let failed = result.checks.filter { !$0.passed }.map(\.name).sorted()
                verdicts.append("\(design) \(engine): \(failed.isEmpty ? "pass" : "fail by " + failed.joined(separator: ","))")
            }
            stop()
        }
        XCTAssertEqual(verdicts, [
            "seed events: pass", "seed threads: pass",
            "charge-balance=naive events: fail by money-conservation", "charge-balance=naive threads: fail by money-conservation",
        ])
    }
}
