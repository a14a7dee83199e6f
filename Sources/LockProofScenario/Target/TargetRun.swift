import Foundation
import LockProofCommerce
import LockProofPostgres

/// One run through a target (issue 18): the target's reset and seed in its own database, the
/// scenario's virtual users as `TargetClient`s (keep-alive connections, spread over the base URLs
/// by `instances.spread`; each request reported to `targetRequestObserver`), the same generator and history as in process, then the checkers on the
/// target's `state` queries. A checker (or threshold) whose input the target does not map is
/// reported as not checked, never as a pass.
extension ScenarioRunner {
    func runThrough(_ target: Target, _ scenario: Scenario) throws -> ScenarioResult {
        let fit = target.fit(scenario)
        var refusals = fit.refusals
        if !scenario.faults.isEmpty {
            refusals.append(
                "faults (\(scenario.faults.map(\.kind.rawValue).joined(separator: ", "))): the nemesis strikes LockProof's own servers, not yet a target's")
        }
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
        loop.start { index in
            let client = TargetClient.forVirtualUser(index, of: target, baseURLs: baseURLs, randomSeed: randomSeed, observe: observe)
            try client.open()
            return client
        }
        let ending = loop.release {}
        return judgeThrough(target, fit: fit, scenario: scenario, initial: initial, databaseURL: databaseURL,
            statistics: statistics, history: history, historyFile: historyFile, checkers: judges, ending: ending)
    }

    private func judgeThrough(
        _ target: Target, fit: TargetFit, scenario: Scenario, initial: InitialState, databaseURL: String, statistics: RunStatistics,
        history: HistoryRecorder, historyFile: URL?, checkers judges: [any Checker], ending: ClientLoop.Ending
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
            db = try PostgresConnection(databaseURL)
        } catch {
            return broken("the target's database was unreachable after the run, the final state could not be read: \(error)")
        }
        let state = TargetState(target: target, db: db, initial: initial)
        let context = CheckContext(scenario: scenario, initial: initial, db: db, statistics: statistics, state: state)
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
        return ScenarioResult(
            scenario: scenario, operations: operations, checks: checks, thresholds: thresholds, statistics: statistics,
            seconds: seconds, runError: historyFailure, historyFile: historyFile)
    }

    /// Checkers that read tables only LockProof's own implementation has.
    /// Checkers whose input only the in-process core records, and why (a pass would be vacuous).
    static let inProcessOnlyCheckers: [String: String] = [
        "compensation": "it reads LockProof's payment intents and simulated gateway, which a target does not have",
        "lock-exclusivity": "it reads the Redis lock holds LockProof's own lock code records; a target's locks are not seen",
    ]
}
