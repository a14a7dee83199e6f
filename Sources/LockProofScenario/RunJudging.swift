import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres

/// What a run left to judge: its history, its statistics, how its clients ended, its faults.
struct FinishedRun {
    let scenario: Scenario
    let initial: InitialState
    let statistics: RunStatistics
    let history: HistoryRecorder
    let historyFile: URL?
    let checkers: [any Checker]
    let gateway: SimulatedPaymentGateway
    let ending: ClientLoop.Ending
    let breaker: CircuitBreakerSummary
    let faults: [FaultRecord]
    /// The first error a recovery worker met during the workload (`workload.recovery`), if any.
    var recoveryError: String? = nil
    /// The first session a connection pool was about to hand to a second borrower, if any.
    var doubleBorrow: String? = nil
}

/// After the clients: a run that broke is an error, not judged; otherwise the interrupted
/// payments are settled, the checkers read the final state, the thresholds the statistics.
extension ScenarioRunner {
    func judge(_ run: FinishedRun) -> ScenarioResult {
        let scenario = run.scenario, statistics = run.statistics, seconds = run.ending.seconds
        let historyFailure = run.history.finish()
        let operations = run.history.operations
        func broken(_ message: String, interrupted: Bool = false) -> ScenarioResult {
            // A session handed to two borrowers explains what followed (a hang, say): named first.
            let message = run.doubleBorrow.map { "\($0); then: \(message)" } ?? message
            return ScenarioResult(
                scenario: scenario, operations: operations, checks: [], thresholds: [], statistics: statistics, seconds: seconds,
                runError: message, interrupted: interrupted, clientsAbandoned: !run.ending.finished, historyFile: run.historyFile)
        }
        if let interruption = run.ending.interruption {
            return broken("\(interruption) after \(String(format: "%.1f", seconds)) s; not judged", interrupted: true)
        }
        if let setupError = run.ending.setupErrors.first {
            return broken("could not start every client: \(setupError)")
        }
        guard run.ending.finished else {
            return broken("the run did not finish within \(Int(run.ending.limitSeconds)) s (workload.timeout): a hang; not judged")
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
        let faultError = run.faults.first { $0.error != nil }.map { "fault \($0.kind) at \(formatSeconds($0.start)) s: \($0.error!)" }
        // Every interrupted payment is settled before the checkers look (as `lockproof recover`).
        var recovery: RecoveryReport?
        if scenario.performs(.pay) {
            do {
                let client = try CommerceClient(configuration: configuration, shared: nil, events: statistics, gateway: run.gateway)
                recovery = try PaymentRecovery.run(client: client)
                // What the compensation-failure alert would have seen before recovery.
                statistics.setGauge("compensations_pending_before_recovery", Double(recovery?.compensationsPendingBefore ?? 0))
            } catch {
                return broken("the payment recovery after the run failed: \(error)")
            }
        }
        let context = CheckContext(
            scenario: scenario, initial: run.initial, db: checkDB, statistics: statistics, faultWindows: run.history.faultWindows)
        let checks: [CheckResult]
        do {
            checks = try run.checkers.map { try $0.check(context) }
        } catch {
            return broken("a checker could not read the final state: \(error)")
        }
        if !scenario.performs(.pay) {
            statistics.setGauge("lockproof_compensations_pending", 0)
        }
        let thresholds = scenario.thresholds.map { $0.evaluate(statistics, seconds: seconds) }
        var result = ScenarioResult(
            scenario: scenario, operations: operations, checks: checks, thresholds: thresholds, statistics: statistics,
            seconds: seconds, runError: run.doubleBorrow ?? historyFailure ?? faultError ?? run.recoveryError, historyFile: run.historyFile, recovery: recovery,
            circuitBreaker: run.breaker, faults: run.faults, lockOverlaps: overlaps)
        result.faultError = faultError
        return result
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
}
