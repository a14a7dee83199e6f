import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres

/// Keeps `lockproof_compensations_pending` equal to the number of compensations recorded in the
/// database but not yet carried out. The database is the truth (a compensation is recorded there
/// durably before it runs, and a restart must not reset the count), so it is counted there.
///
/// One thread with its own session polls every `intervalSeconds`; it never touches the callers'
/// connections, which are not thread-safe.
public final class CompensationsPendingMonitor: @unchecked Sendable {
    public let intervalSeconds: Double
    private let metrics: LockProofMetrics
    private let condition = NSCondition()
    private var stopping = false
    private var lastError: String?
    private var lastCount: Int?
    /// Used only by the polling thread once started.
    private let database: PostgresConnection
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    /// Opens the session now, so that an unreachable database is reported to the caller.
    public init(
        metrics: LockProofMetrics, databaseURL: String, intervalSeconds: Double = 5,
        connectTimeoutSeconds: Int = PostgresConnection.defaultConnectTimeoutSeconds
    ) throws {
        precondition(intervalSeconds > 0, "the polling interval must be positive")
        self.metrics = metrics
        self.intervalSeconds = intervalSeconds
        database = try PostgresConnection(databaseURL, connectTimeoutSeconds: connectTimeoutSeconds)
    }

    /// Counts the pending compensations once and sets the gauge; returns the count.
    @discardableResult
    public static func refresh(metrics: LockProofMetrics, database: PostgresConnection) throws -> Int {
        try database.reconnectIfNeeded()
        let count = try Compensation.pending(db: database).count
        metrics.setCompensationsPending(count)
        return count
    }

    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in run() }
        thread.name = "lockproof-compensations-pending"
        thread.start()
    }

    /// Healthy while the last poll reached the database.
    public var health: HealthReport {
        condition.lock()
        defer { condition.unlock() }
        if let lastError { return HealthReport(healthy: false, detail: "database unreachable: \(lastError)") }
        return .ok
    }

    /// The count the last successful poll found, nil before the first one.
    public var lastPendingCount: Int? {
        condition.lock()
        defer { condition.unlock() }
        return lastCount
    }

    private func run() {
        defer { finished.signal() }
        while true {
            var count: Int?
            var failure: String?
            do { count = try Self.refresh(metrics: metrics, database: database) } catch { failure = String(describing: error) }
            condition.lock()
            lastError = failure
            if let count { lastCount = count }
            let deadline = Date(timeIntervalSinceNow: intervalSeconds)
            while !stopping && Date() < deadline { _ = condition.wait(until: deadline) }
            let done = stopping
            condition.unlock()
            if done { return }
        }
    }

    /// Stops polling and waits for the thread to end (at most one poll in progress).
    public func stop() {
        condition.lock()
        let wasStarted = started && !stopping
        stopping = true
        condition.broadcast()
        condition.unlock()
        if wasStarted { finished.wait() }
    }
}
