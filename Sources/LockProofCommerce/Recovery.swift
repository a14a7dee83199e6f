import Foundation
import LockProofLocking
import LockProofPostgres
import Synchronization

/// What one recovery pass found and did.
public struct RecoveryReport: Sendable, Equatable, Codable {
    /// Intents still `open` when the pass began (interrupted payments).
    public var interrupted = 0
    /// Of those, the gateway had approved: the order is now PAID.
    public var markedPaid = 0
    /// Of those, the gateway had declined or never charged: balance and stock restored.
    public var compensated = 0
    /// Pending compensations (a failed compensation) before and after the pass.
    public var compensationsPendingBefore = 0
    public var compensationsPendingAfter = 0
    /// Intents still open after the pass (their compensation failed again, or the gateway did not answer).
    public var stillOpen = 0
    /// The first error met, if any; the pass goes on past it.
    public var firstError: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case interrupted
        case markedPaid = "marked_paid"
        case compensated
        case compensationsPendingBefore = "compensations_pending_before"
        case compensationsPendingAfter = "compensations_pending_after"
        case stillOpen = "still_open"
        case firstError = "first_error"
    }
}

/// Finishes every interrupted payment exactly once: each `open` intent is settled by asking the
/// gateway what became of its order (approved → PAID; declined or never charged → compensated),
/// and every pending compensation is retried. Re-running it changes nothing: intents and orders
/// are updated only from `open` / `PAYING`, under the order's row lock.
public enum PaymentRecovery {
    /// `minimumAgeSeconds` leaves younger intents alone (a live payment may still be talking to the
    /// gateway; settling it early is still correct, since the gateway voids an order it never saw,
    /// but it fails a payment that would have succeeded).
    public static func run(client: CommerceClient, minimumAgeSeconds: Double = 0) throws -> RecoveryReport {
        let probe = client.probe(.processPayment)
        let db = try client.database
        var report = RecoveryReport()
        report.compensationsPendingBefore = try Compensation.pending(db: db).count
        let rows = try db.query(
            """
            SELECT order_id FROM payment_intents
            WHERE status = 'open' AND created_at <= now() - make_interval(secs => $1) ORDER BY order_id
            """, [minimumAgeSeconds])
        let open = (0..<rows.rowCount).compactMap { rows.int($0, 0) }
        report.interrupted = open.count
        for orderId in open {
            do {
                switch try client.gateway.settle(orderId: orderId) {
                case .approved:
                    if try ProcessPayment.markPaid(orderId: orderId, db: db, probe: probe) { report.markedPaid += 1 }
                case .declined, .voided:
                    try transaction(db, probe: probe) { db in
                        try db.query(
                            """
                            INSERT INTO compensations (order_id, status, reason) VALUES ($1, 'pending', 'recovered: gateway did not charge')
                            ON CONFLICT (order_id) DO NOTHING
                            """, [orderId])
                    }
                    do {
                        try Compensation.run(orderId: orderId, client: client, probe: probe)
                        report.compensated += 1
                    } catch {
                        try? Compensation.recordFailure(orderId: orderId, error: error, db: db)
                        throw error
                    }
                }
            } catch {
                if report.firstError == nil { report.firstError = "order \(orderId): \(error)" }
                try? db.reconnectIfNeeded()
            }
        }
        // Failed compensations of payments that were not interrupted (their intent is settled by
        // the compensation itself).
        for orderId in try Compensation.pending(db: db) {
            do {
                try Compensation.run(orderId: orderId, client: client, probe: probe)
            } catch {
                try? Compensation.recordFailure(orderId: orderId, error: error, db: db)
                if report.firstError == nil { report.firstError = "order \(orderId): \(error)" }
            }
        }
        report.compensationsPendingAfter = try Compensation.pending(db: db).count
        report.stillOpen = try db.query("SELECT count(*) FROM payment_intents WHERE status = 'open'").int(0, 0) ?? 0
        return report
    }
}

/// `lockproof serve` runs recovery in the background: one thread with its own client, every
/// `intervalSeconds`, settling intents at least that old.
public final class PeriodicRecovery: @unchecked Sendable {
    public var intervalSeconds: Double { thread.intervalSeconds }
    private let client: CommerceClient
    private let last = Mutex<RecoveryReport?>(nil)
    private var thread: PeriodicThread!

    public init(client: CommerceClient, intervalSeconds: Double) {
        precondition(intervalSeconds > 0, "the recovery interval must be positive")
        self.client = client
        thread = PeriodicThread(name: "lockproof-payment-recovery", intervalSeconds: intervalSeconds, firstPass: .afterInterval) {
            [weak self] in self?.pass(minimumAgeSeconds: intervalSeconds)
        }
    }

    /// What the last pass did (nil before the first).
    public var lastReport: RecoveryReport? {
        last.withLock { $0 }
    }

    public func start() { thread.start() }

    public func stop() { thread.stop() }

    private func pass(minimumAgeSeconds: Double) {
        try? client.database.reconnectIfNeeded()
        guard let report = try? PaymentRecovery.run(client: client, minimumAgeSeconds: minimumAgeSeconds) else { return }
        last.withLock { $0 = report }
    }
}
