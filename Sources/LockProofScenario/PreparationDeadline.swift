import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofPostgres
import LockProofSync

/// Bounds the preparation of a run (emptying the tables, seeding) by the scenario's timeout, as a
/// whole: when the deadline passes first, the preparing session's statement is cancelled from a
/// second session (pg_cancel_backend), and the run is aborted with a message that says so. A seed of
/// millions of rows would otherwise run for minutes before the first operation.
final class PreparationDeadline: @unchecked Sendable {
    private let condition = WaitCondition()
    private var finished = false
    private(set) var expired = false
    static let cancelInterval = 0.2

    /// Starts the clock for the session `backendPID` of `configuration`'s database.
    init(seconds: Double, backendPID: Int32, configuration: ServerConfiguration) {
        let thread = Thread { [self] in
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: seconds)
            while !finished, condition.wait(until: deadline) {}
            guard !finished else { return }
            expired = true
            // A cancel that reaches the session between two statements (while it reads a result)
            // cancels nothing, and the next statement would run unbounded: cancel again every
            // 200 ms until the preparation gives up. Each cancel is sent holding the lock, so
            // `finish` cannot return before it was, and none is sent after the preparation.
            var canceller: PostgresConnection?
            while !finished {
                do {
                    if canceller == nil { canceller = try configuration.openDatabase() }
                    _ = try canceller?.query("SELECT pg_cancel_backend($1)", [Int(backendPID)])
                } catch {
                    canceller = nil  // opened again on the next round
                }
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.cancelInterval))
            }
        }
        thread.name = "lockproof-preparation-deadline"
        thread.start()
    }

    /// Stops the clock; returns whether the deadline had passed (the preparation was cancelled).
    @discardableResult
    func finish() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        finished = true
        condition.broadcast()
        return expired
    }
}
