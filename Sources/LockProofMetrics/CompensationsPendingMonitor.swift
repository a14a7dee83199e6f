import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import Synchronization

/// Keeps `lockproof_compensations_pending` equal to the number of compensations recorded in the
/// database but not yet carried out. The database is the truth (a compensation is recorded there
/// durably before it runs, and a restart must not reset the count), so it is counted there.
///
/// One thread with its own session polls every `intervalSeconds`; it never touches the callers'
/// connections, which are not thread-safe.
public final class CompensationsPendingMonitor: @unchecked Sendable {
    public var intervalSeconds: Double { thread.intervalSeconds }
    private let metrics: LockProofMetrics
    /// The last poll's error and the last count found.
    private let outcome = Mutex<(lastError: String?, lastCount: Int?)>((nil, nil))
    /// Used only by the polling thread once started.
    private let database: PostgresConnection
    private var thread: PeriodicThread!

    /// Opens the session now, so that an unreachable database is reported to the caller.
    public init(
        metrics: LockProofMetrics, databaseURL: String, intervalSeconds: Double = 5,
        connectTimeoutSeconds: Int = PostgresConnection.defaultConnectTimeoutSeconds
    ) throws {
        precondition(intervalSeconds > 0, "the polling interval must be positive")
        self.metrics = metrics
        database = try PostgresConnection(databaseURL, connectTimeoutSeconds: connectTimeoutSeconds)
        thread = PeriodicThread(name: "lockproof-compensations-pending", intervalSeconds: intervalSeconds, firstPass: .atStart) {
            [weak self] in self?.poll()
        }
    }

    /// Counts the pending compensations once and sets the gauge; returns the count.
    @discardableResult
    public static func refresh(metrics: LockProofMetrics, database: PostgresConnection) throws -> Int {
        try database.reconnectIfNeeded()
        let count = try Compensation.pending(db: database).count
        metrics.setCompensationsPending(count)
        return count
    }

    public func start() { thread.start() }

    /// Healthy while the last poll reached the database.
    public var health: HealthReport {
        if let lastError = outcome.withLock({ $0.lastError }) {
            return HealthReport(healthy: false, detail: "database unreachable: \(lastError)")
        }
        return .ok
    }

    /// The count the last successful poll found, nil before the first one.
    public var lastPendingCount: Int? {
        outcome.withLock { $0.lastCount }
    }

    private func poll() {
        var count: Int?
        var failure: String?
        do { count = try Self.refresh(metrics: metrics, database: database) } catch { failure = String(describing: error) }
        outcome.withLock {
            $0.lastError = failure
            if let count { $0.lastCount = count }
        }
    }

    /// Stops polling and waits for the thread to end (at most one poll in progress).
    public func stop() { thread.stop() }
}
