import Foundation
import LockProofLocking

/// One line of a Redis lock hold in a run's history (process `lock`): a client's lock was granted,
/// or its release was sent. Written by the lock code's own events (`LockProofEvent.lockAcquired`,
/// `.lockReleased`) as they happen, on the run's clock; the lock-exclusivity checker pairs them
/// by token into holds.
public struct LockEntry: Sendable, Codable, Equatable {
    public enum Phase: String, Sendable, Codable {
        case acquire, release
    }

    /// How a release ended, as Redis answered it.
    public enum ReleaseOutcome: String, Sendable, Codable {
        /// The token was still there: the lock was this holder's until the release.
        case released
        /// The token was gone (lease expired, or the key lost in a failover): the hold ended earlier.
        case lost
        /// No answer (Redis down, a timeout): it may or may not have been released.
        case unknown
    }

    /// Always `lock`: what tells this line from a client's operation and the nemesis'.
    public static let process = "lock"
    public private(set) var process = LockEntry.process

    public let phase: Phase
    /// The client (virtual user) that held it.
    public let client: Int
    public let key: String
    /// Unique to the holding: the acquire and the release of one hold carry the same.
    public let token: String
    public let fencingToken: Int64
    public let leaseMilliseconds: Int
    /// Seconds since the run began. Acquire: when Redis' reply granting the lock came back (held
    /// by then). Release: when the release was sent (still held then, if it was `released`).
    public let time: Double
    /// Acquire only: when the winning attempt was sent; the lease runs from no earlier.
    public let requested: Double?
    /// Acquire only: the watchdog renews the lease while the holder works; false: the lease ends
    /// `leaseMilliseconds` after it was set, whatever the release says.
    public let renew: Bool?
    /// Release only: when the last renewal Redis confirmed was sent (its lease runs from no
    /// earlier); absent when none was.
    public let renewed: Double?
    /// Release only.
    public let outcome: ReleaseOutcome?

    public init(
        phase: Phase, client: Int, key: String, token: String, fencingToken: Int64, leaseMilliseconds: Int, time: Double,
        requested: Double? = nil, renew: Bool? = nil, renewed: Double? = nil, outcome: ReleaseOutcome? = nil
    ) {
        self.phase = phase
        self.client = client
        self.key = key
        self.token = token
        self.fencingToken = fencingToken
        self.leaseMilliseconds = leaseMilliseconds
        self.time = time
        self.requested = requested
        self.renew = renew
        self.renewed = renewed
        self.outcome = outcome
    }

    enum CodingKeys: String, CodingKey {
        case process, phase, client, key, token, renew, outcome
        case fencingToken = "fencing_token"
        case leaseMilliseconds = "lease_ms"
        case time = "time_seconds"
        case requested = "requested_seconds"
        case renewed = "renewed_seconds"
    }
}

/// One client's event sink in a run: every event goes on to `forward` (the run's statistics), and
/// the lock code's grants and releases also go to the history as `LockEntry` lines of that client,
/// on the run's clock (`origin`: the monotonic second the run began).
final class LockHoldEvents: EventSink, Sendable {
    let client: Int
    let forward: any EventSink
    let history: HistoryRecorder
    let origin: @Sendable () -> Double

    init(client: Int, forward: any EventSink, history: HistoryRecorder, origin: @escaping @Sendable () -> Double) {
        self.client = client
        self.forward = forward
        self.history = history
        self.origin = origin
    }

    func record(_ event: LockProofEvent, caseName: String) {
        forward.record(event, caseName: caseName)
        switch event {
        case .lockAcquired(let handle, let requestedAt, let at, let renewed):
            let origin = origin()
            history.record(
                LockEntry(
                    phase: .acquire, client: client, key: handle.key, token: handle.token, fencingToken: handle.fencingToken,
                    leaseMilliseconds: handle.leaseMilliseconds, time: at - origin, requested: requestedAt - origin, renew: renewed))
        case .lockReleased(let handle, let requestedAt, let released, let renewedAt):
            let outcome: LockEntry.ReleaseOutcome = released.map { $0 ? .released : .lost } ?? .unknown
            let origin = origin()
            history.record(
                LockEntry(
                    phase: .release, client: client, key: handle.key, token: handle.token, fencingToken: handle.fencingToken,
                    leaseMilliseconds: handle.leaseMilliseconds, time: requestedAt - origin, renewed: renewedAt.map { $0 - origin },
                    outcome: outcome))
        default:
            break
        }
    }
}
