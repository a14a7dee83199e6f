import Foundation
import LockProofCommerce

/// Mutual exclusion of the Redis lock: no two clients hold one key at once, outside the nemesis'
/// fault windows. Reads the holds the lock code reported (`LockEntry`: each grant and release with
/// its token), never infers them from operations.
///
/// A hold runs from the grant's reply (Redis had set the key by then) to its end, taken on the
/// side that can only make it shorter than it really was, so that timestamping never makes two
/// holds overlap that did not:
/// - released (Redis found the token still there) with a lease the watchdog renewed: the lock was
///   the holder's up to the moment the release was sent;
/// - otherwise (a lease of fixed length, a lost lock: the token was gone, no answer): the hold
///   ended at its release or at the earliest its lease could have run out (the winning attempt's
///   sending, or the sending of the last renewal Redis confirmed, + the lease, less a few
///   milliseconds for Redis' millisecond clock), whichever first.
///   An expired lease is a lost lock, not two holders: the design's promise ends with the lease
///   (fencing guards what follows);
/// - never released (the run ended first): at the earliest its lease could have run out.
/// Since a key can be set again only once it is gone, two holds of a correct lock never overlap
/// so measured. Two that do are two holders at once: inside a fault window (the fault was active
/// between the earlier hold's start and the overlap's end: a failover that forgot the key, Redis
/// restarted empty) they are counted apart, as expected; outside, a violation.
///
/// Keeps per key the open holds and the last few closed ones (releases can be recorded after the
/// next grant of the key, so each closing hold is compared with those); the overlaps found are
/// kept (bounded) until `check`, which alone knows the fault windows.
final class LockExclusivityChecker: LockHoldChecker {
    let name = "lock-exclusivity"
    /// It reads lock entries only.
    let operations: Set<OperationName> = []

    /// Redis keeps expiry times in milliseconds: a lease can run out this much before
    /// `requested + lease` on the client's clock.
    static let leaseTolerance = 0.005
    /// Closed holds kept per key to compare a closing hold with.
    static let recentLimit = 16
    /// Overlaps kept for classification; past it they are counted only.
    static let overlapLimit = 10_000

    struct Hold: Equatable {
        let client: Int
        let fencingToken: Int64
        let start: Double
        /// The earliest its lease could have run out, renewals aside.
        var leaseFloor: Double
        /// The watchdog renewed its lease: only a release Redis did not confirm ends it at `leaseFloor`.
        let renewed: Bool
        var end: Double = .infinity
    }

    struct Overlap: Equatable {
        let key: String
        let first: Hold
        let second: Hold
        /// From the later start to the earlier end.
        var start: Double { max(first.start, second.start) }
        var end: Double { min(first.end, second.end) }
    }

    private struct KeyState {
        var open: [String: Hold] = [:]
        var recent: [Hold] = []
    }

    private var keys: [String: KeyState] = [:]
    private var overlaps: [Overlap] = []
    private var overlapsBeyondLimit = 0
    private var holds = 0
    private var lost = 0
    private var unmatchedReleases = 0
    private var closedOpenHolds = false

    var retainedRecords: Int { keys.values.reduce(0) { $0 + $1.open.count + $1.recent.count } + overlaps.count }

    func observe(_ entry: HistoryEntry) {}

    func observe(_ entry: LockEntry) {
        switch entry.phase {
        case .acquire:
            holds += 1
            let requested = entry.requested ?? entry.time
            keys[entry.key, default: KeyState()].open[entry.token] = Hold(
                client: entry.client, fencingToken: entry.fencingToken, start: entry.time,
                leaseFloor: requested + Double(entry.leaseMilliseconds) / 1000 - Self.leaseTolerance, renewed: entry.renew ?? true)
        case .release:
            guard var hold = keys[entry.key]?.open.removeValue(forKey: entry.token) else {
                unmatchedReleases += 1
                return
            }
            if entry.outcome == .lost { lost += 1 }
            // A renewal Redis confirmed ran the lease on from when it was sent.
            if let renewed = entry.renewed {
                hold.leaseFloor = max(hold.leaseFloor, renewed + Double(entry.leaseMilliseconds) / 1000 - Self.leaseTolerance)
            }
            // A confirmed release of a renewed lease proves the hold up to it; otherwise the lease
            // bounds it too.
            hold.end = entry.outcome == .released && hold.renewed ? entry.time : min(entry.time, hold.leaseFloor)
            close(hold, key: entry.key)
        }
    }

    /// Compares a finished hold with the recently finished holds of its key, then keeps it among them.
    private func close(_ hold: Hold, key: String) {
        // Out of the dictionary while it changes: no copy of its holds on each write.
        var state = keys.removeValue(forKey: key) ?? KeyState()
        for other in state.recent where max(hold.start, other.start) < min(hold.end, other.end) {
            let (first, second) = other.start <= hold.start ? (other, hold) : (hold, other)
            if overlaps.count < Self.overlapLimit {
                overlaps.append(Overlap(key: key, first: first, second: second))
            } else {
                overlapsBeyondLimit += 1
            }
        }
        state.recent.append(hold)
        if state.recent.count > Self.recentLimit, let oldest = state.recent.indices.min(by: { state.recent[$0].end < state.recent[$1].end }) {
            state.recent.remove(at: oldest)
        }
        keys[key] = state
    }

    /// Was a fault active between the earlier hold's start and the overlap's end?
    static func duringFault(_ overlap: Overlap, _ windows: [FaultWindow]) -> Bool {
        windows.contains { $0.start <= overlap.end && ($0.end ?? .infinity) >= overlap.first.start }
    }

    func check(_ context: CheckContext) throws -> CheckResult {
        // Holds the run ended before they were released: held until their lease could run out.
        if !closedOpenHolds {
            closedOpenHolds = true
            for (key, state) in keys.sorted(by: { $0.key < $1.key }) {
                for hold in state.open.values.sorted(by: { $0.start < $1.start }) {
                    var ended = hold
                    ended.end = hold.leaseFloor
                    keys[key]?.open = [:]
                    close(ended, key: key)
                }
            }
        }
        let inside = overlaps.filter { Self.duringFault($0, context.faultWindows) }
        let outside = overlaps.filter { !Self.duringFault($0, context.faultWindows) }
        var tally = ViolationTally()
        if let first = outside.first {
            tally.add(
                "two-holders-outside-fault-window", count: outside.count, Self.describe(first) + ", outside every fault window",
                evidence: ViolationEvidence(
                    subject: ["client": first.first.client, "other_client": first.second.client], observed: 2, expected: 1))
        }
        // Past the limit the overlaps cannot be placed against the fault windows: not shown expected.
        if let example = overlaps.last {
            tally.add(
                "two-holders-unclassified", count: overlapsBeyondLimit,
                "\(overlapsBeyondLimit) overlaps beyond the first \(Self.overlapLimit) were not placed against the fault windows; the last placed: \(Self.describe(example))")
        }
        var summary = "\(holds) Redis lock holds of \(keys.count) keys, \(lost) lost; \(outside.count) two-holder overlaps outside fault windows, \(inside.count) inside (expected)"
        if unmatchedReleases > 0 { summary += "; \(unmatchedReleases) releases without a recorded grant" }
        return tally.result(name, summary: summary)
    }

    static func describe(_ overlap: Overlap) -> String {
        func hold(_ h: Hold) -> String {
            let end = h.end.isFinite ? String(format: "%.4f", h.end) : "?"
            return "client \(h.client) (fencing token \(h.fencingToken)) from \(String(format: "%.4f", h.start)) s to \(end) s"
        }
        return "\(overlap.key) held by \(hold(overlap.first)) and by \(hold(overlap.second)): two holders for \(String(format: "%.1f", (overlap.end - overlap.start) * 1000)) ms"
    }
}
