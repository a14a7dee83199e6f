import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking

/// `workload.recovery`: payment recovery run while the clients run, by several workers at once,
/// each on a thread and a database session of its own (as several `serve` instances each run their
/// periodic recovery). They race each other and the payments' own compensations over the same
/// intents; money and stock conservation and the compensation checker judge what they left.
/// What they did is counted in the run's statistics (`recovery_passes`, `recovery_settled`,
/// `recovery_errors`), which thresholds may name.
final class RecoveryWorkers: @unchecked Sendable {
    static let passes = "recovery_passes"
    static let settled = "recovery_settled"
    static let errors = "recovery_errors"

    private let threads: [PeriodicThread]
    private let firstError = LockedValue<String?>(nil)

    /// Makes the workers' clients now (a session each), so that a server that cannot take them
    /// fails the run before its clients start.
    init(
        _ spec: RecoverySpec, configuration: ServerConfiguration, statistics: RunStatistics, gateway: SimulatedPaymentGateway
    ) throws {
        var threads: [PeriodicThread] = []
        let firstError = firstError
        for worker in 0..<spec.workers {
            let owned = OwnedClient(
                try CommerceClient(configuration: configuration, shared: nil, events: statistics, gateway: gateway))
            _ = try owned.client.database
            threads.append(
                PeriodicThread(name: "lockproof-recovery-\(worker)", intervalSeconds: spec.everySeconds, firstPass: .atStart) {
                    let client = owned.client
                    try? client.database.reconnectIfNeeded()
                    do {
                        let report = try PaymentRecovery.run(client: client, minimumAgeSeconds: spec.minimumAgeSeconds)
                        statistics.countInternal(Self.passes)
                        statistics.countInternal(Self.settled, by: report.markedPaid + report.compensated)
                        // An order it could not settle stays for the next pass: counted, not a broken run.
                        if report.firstError != nil { statistics.countInternal(Self.errors) }
                    } catch {
                        statistics.countInternal(Self.errors)
                        firstError.mutate { $0 = $0 ?? "recovery worker \(worker): \(error)" }
                    }
                })
        }
        self.threads = threads
    }

    func start() { threads.forEach { $0.start() } }

    /// Stops every worker and waits for passes in progress; returns the first pass that failed as
    /// a whole (its session lost, say), if any: the run is then an error.
    func stop() -> String? {
        threads.forEach { $0.stop() }
        return firstError.value
    }
}

/// A worker's client: made here, then used by its worker's thread alone.
private final class OwnedClient: @unchecked Sendable {
    let client: CommerceClient
    init(_ client: CommerceClient) { self.client = client }
}
