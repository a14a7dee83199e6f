import Foundation
import LockProofLocking
import Synchronization

/// Remembers when `/metrics` was rendered, so that a short run can wait until Prometheus has seen
/// its start (every series at 0) and its end (the final values): a scrape that renders after the
/// last operation is the only way the last increments reach Prometheus.
public final class ScrapeTracker: Sendable {
    private struct State {
        var count = 0
        var last: Double?
        var previous: Double?
    }
    private let state = Mutex(State())

    public init() {}

    /// A rendering of the exposition finished now (called by the endpoint after rendering, so the
    /// values it read are the ones of this moment or earlier).
    public func recordScrape(at seconds: Double = monotonicSeconds()) {
        state.withLock { state in
            state.count += 1
            state.previous = state.last
            state.last = seconds
        }
    }

    /// How many renderings there have been.
    public var count: Int { state.withLock { $0.count } }

    /// The time between the last two scrapes, nil before the second one.
    public var observedIntervalSeconds: Double? {
        state.withLock { state in
            guard let last = state.last, let previous = state.previous else { return nil }
            return last - previous
        }
    }

    /// Waits until a scrape has rendered after `instant` (from `monotonicSeconds()`), at most
    /// `timeoutSeconds` or until `stop` says so. Returns the seconds from `instant` to that scrape,
    /// or nil when none came.
    public func waitForScrape(after instant: Double, timeoutSeconds: Double, stop: () -> Bool = { false }) -> Double? {
        let deadline = monotonicSeconds() + max(0, timeoutSeconds)
        while true {
            if let last = state.withLock({ $0.last }), last >= instant { return last - instant }
            if stop() || monotonicSeconds() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// How long to linger after the last operation when the user did not say: two observed scrape
    /// intervals plus a second (a late or slow scrape), within 1...120 s; 0 when nobody has
    /// scraped (nothing would read the final values); 30 s when only one scrape came.
    public func defaultLingerSeconds() -> Double {
        if count == 0 { return 0 }
        let interval = observedIntervalSeconds
        guard let interval else { return 30 }
        return min(120, max(1, 2 * interval + 1))
    }
}
