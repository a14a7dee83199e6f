import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres

/// One run through a target (issue 18): the target's reset and seed in its own database, the
/// scenario's virtual users as `TargetEventClient`s on one loop thread (or `TargetClient`s on a thread each,
/// `--client-engine threads`; keep-alive connections, spread over the base URLs
/// by `instances.spread`; each request reported to `targetRequestObserver`), the same generator and history as in process, then the checkers on the
/// target's `state` queries. A checker (or threshold) whose input the target does not map is
/// reported as not checked, never as a pass.
extension ScenarioRunner {
    func runThrough(_ target: Target, _ scenario: Scenario) throws -> ScenarioResult {
        let fit = target.fit(scenario)
        let refusals = fit.refusals + target.faultRefusals(scenario, configuration: configuration)
        guard refusals.isEmpty else {
            throw RunAborted(message: "\(scenario.name): refused through the target \(target.name): \(refusals.joined(separator: "; "))")
        }
        let baseURLs: [String]
        let databaseURL: String
        do {
            baseURLs = try target.resolvedBaseURLs()
            databaseURL = try target.databaseURL()
        } catch {
            throw RunAborted(message: "\(error)")
        }
        guard databaseURL != configuration.databaseURL else {
            throw RunAborted(
                message: "\(target.file): error: database.url_env: \(target.databaseURLVariable) names LockProof's own database; a target has its own")
        }
        let db: PostgresConnection
        do {
            db = try PostgresConnection(databaseURL)
        } catch {
            throw RunAborted(message: "\(target.file): the target's database (\(target.databaseURLVariable)) is unreachable: \(error)")
        }
        // Server and instance faults strike only what the environment says LockProof started
        // (`faultRefusals` above said which); the in-process hooks were refused by `fit`.
        let servers: ManagedServers?
        do {
            servers = try managedServers[scenario.name]
                ?? ManagedServers.check(configuration, faults: scenario.faults.map(\.kind), targetDatabaseURL: databaseURL)
        } catch {
            throw RunAborted(message: "\(scenario.name): \(error)")
        }
        let initial: InitialState
        do {
            initial = try target.resetAndSeed(scenario, db: db)
        } catch {
            throw RunAborted(message: "\(scenario.name): \(error)")
        }

        let statistics = RunStatistics(forward: forward)
        let judges = checkers(for: scenario)
        let historyFile = historyDirectory.map { $0.appendingPathComponent(ReportWriter.fileBase(scenario.name) + ".history.jsonl") }
        let history = try HistoryRecorder(checkers: judges, file: historyFile)
        let loop = ClientLoop(
            scenario: scenario, initial: initial, history: history, statistics: statistics, progress: progress, stop: stop,
            observer: operationObserver)
        let randomSeed = scenario.workload.randomSeed
        let observe = targetRequestObserver
        // The nemesis on the run's clock, as in process. Its context's gateway and client switches
        // are never struck: the kinds that use them are refused through a target.
        let nemesis = Nemesis(
            scenario.faults,
            context: FaultContext(
                configuration: configuration, shared: shared, servers: servers,
                gateway: SimulatedPaymentGateway(failureRate: 0, seed: scenario.workload.randomSeed),
                clients: ClientFaultSwitches(seed: scenario.workload.randomSeed), clock: loop.clock,
                targetDatabaseURL: databaseURL))
        do {
            try nemesis.prepare()
        } catch {
            _ = nemesis.stop(runSeconds: 0)
            throw RunAborted(message: "\(scenario.name): the faults could not be prepared: \(error)")
        }
        switch target.clientEngine {
        case .events:
            loop.startEventDriven(loopThreads: ClientLoop.defaultLoopThreads) { index in
                TargetEventClient.forVirtualUser(index, of: target, baseURLs: baseURLs, randomSeed: randomSeed, observe: observe)
            }
        case .threads:
            loop.start { index in
                let client = TargetClient.forVirtualUser(index, of: target, baseURLs: baseURLs, randomSeed: randomSeed, observe: observe)
                try client.open()
                return client
            }
        }
        let ending = loop.release { nemesis.start() }
        // Every fault still active ends now and every server and instance is restored.
        let faults = nemesis.stop(runSeconds: ending.seconds)
        for record in faults {
            for entry in NemesisEntry.entries(of: record) { history.record(entry) }
        }
        return judgeThrough(target, fit: fit, scenario: scenario, initial: initial, databaseURL: databaseURL,
            statistics: statistics, history: history, historyFile: historyFile, checkers: judges, ending: ending, faults: faults)
    }

    private func judgeThrough(
        _ target: Target, fit: TargetFit, scenario: Scenario, initial: InitialState, databaseURL: String, statistics: RunStatistics,
        history: HistoryRecorder, historyFile: URL?, checkers judges: [any Checker], ending: ClientLoop.Ending,
        faults: [FaultRecord]
    ) -> ScenarioResult {
        let historyFailure = history.finish()
        let operations = history.operations
        let seconds = ending.seconds
        func broken(_ message: String, interrupted: Bool = false) -> ScenarioResult {
            ScenarioResult(
                scenario: scenario, operations: operations, checks: [], thresholds: [], statistics: statistics, seconds: seconds,
                runError: message, interrupted: interrupted, clientsAbandoned: !ending.finished, historyFile: historyFile)
        }
        if let interruption = ending.interruption {
            return broken("\(interruption) after \(String(format: "%.1f", seconds)) s; not judged", interrupted: true)
        }
        if let setupError = ending.setupErrors.first { return broken("could not start every client: \(setupError)") }
        guard ending.finished else {
            return broken("the run did not finish within \(Int(ending.limitSeconds)) s (workload.timeout): a hang; not judged")
        }
        let db: PostgresConnection
        do {
            db = try Self.connectAfterFaults(databaseURL)
        } catch {
            return broken("the target's database was unreachable after the run, the final state could not be read: \(error)")
        }
        let state = TargetState(target: target, db: db, initial: initial)
        let context = CheckContext(
            scenario: scenario, initial: initial, db: db, statistics: statistics, faultWindows: history.faultWindows, state: state)
        var checks: [CheckResult] = []
        do {
            for checker in judges {
                if let unmapped = fit.uncheckedCheckers.first(where: { $0.hasPrefix(checker.name + ":") }) {
                    checks.append(.notChecked(checker.name, because: String(unmapped.dropFirst(checker.name.count + 2))))
                } else if let reason = Self.inProcessOnlyCheckers[checker.name] {
                    checks.append(.notChecked(checker.name, because: reason))
                } else {
                    checks.append(try checker.check(context))
                }
            }
        } catch {
            return broken("a checker could not read the target's final state: \(error)")
        }
        // A threshold on what only LockProof's own strategies record cannot be judged from outside.
        for threshold in fit.uncheckedThresholds {
            checks.append(.notChecked("threshold \(threshold)", because: "it measures what only LockProof's in-process strategies record"))
        }
        let thresholds = scenario.thresholds.filter { Target.observableMetrics.contains($0.metric) }.map {
            $0.evaluate(statistics, seconds: seconds)
        }
        // A fault that could not be injected or healed, or never struck, makes the run an error.
        let faultError = faults.first { $0.error != nil }.map { "fault \($0.kind) at \(formatSeconds($0.start)) s: \($0.error!)" }
        var result = ScenarioResult(
            scenario: scenario, operations: operations, checks: checks, thresholds: thresholds, statistics: statistics,
            seconds: seconds, runError: historyFailure ?? faultError, historyFile: historyFile, faults: faults)
        result.faultError = faultError
        return result
    }

    /// A new session on the target's database, retried for up to ten seconds (a server coming back).
    private static func connectAfterFaults(_ url: String) throws -> PostgresConnection {
        let until = monotonicSeconds() + 10
        while true {
            do {
                let db = try PostgresConnection(url)
                _ = try db.query("SELECT 1")
                return db
            } catch {
                if monotonicSeconds() >= until { throw error }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }

    /// Checkers that read tables only LockProof's own implementation has.
    /// Checkers whose input only the in-process core records, and why (a pass would be vacuous).
    static let inProcessOnlyCheckers: [String: String] = [
        "compensation": "it reads LockProof's payment intents and simulated gateway, which a target does not have",
        "lock-exclusivity": "it reads the Redis lock holds LockProof's own lock code records; a target's locks are not seen",
    ]
}
