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

    /// Starts the clock for the session `backendPID` of `configuration`'s database.
    init(seconds: Double, backendPID: Int32, configuration: ServerConfiguration) {
        let thread = Thread { [self] in
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: seconds)
            while !finished, condition.wait(until: deadline) {}
            guard !finished else { return }
            // Still holding the lock: `finish` cannot return before the cancel was sent, so no
            // statement after the preparation is ever cancelled by it.
            expired = true
            _ = try? configuration.openDatabase().query("SELECT pg_cancel_backend($1)", [Int(backendPID)])
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
