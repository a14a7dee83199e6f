import Foundation
import Synchronization

/// Failure threshold, cool-down and probe of a circuit breaker.
public struct CircuitBreakerOptions: Sendable, Equatable {
    /// Consecutive failed calls that open the breaker.
    public var failureThreshold: Int
    /// How long the breaker stays open before one probe call may try the dependency again.
    public var coolDownSeconds: Double

    public static let standard = CircuitBreakerOptions(failureThreshold: 3, coolDownSeconds: 1)

    public init(failureThreshold: Int, coolDownSeconds: Double) {
        self.failureThreshold = max(1, failureThreshold)
        self.coolDownSeconds = max(0, coolDownSeconds)
    }
}

/// The states of a circuit breaker (Resilience4j's), also exported as one metric series per state.
public enum CircuitBreakerState: String, Sendable, CaseIterable {
    /// Calls go through (Redis locks are used).
    case closed
    /// Calls are skipped (the cases run on database locks alone).
    case open
    /// One trial call probes whether the dependency is back.
    case halfOpen = "half_open"
}

/// The circuit breaker around Redis, shared by every client of a process (Resilience4j's states).
/// Closed: calls go to Redis. Open: calls skip Redis, so the cases run on their database locks
/// alone. Half-open: after the cool-down, exactly one call probes Redis; its success closes the
/// breaker, its failure opens it for another cool-down. Thread-safe.
public final class CircuitBreaker: Sendable {
    public typealias State = CircuitBreakerState

    /// What a caller may do now.
    public enum Permission: Sendable, Equatable {
        /// Use Redis.
        case call
        /// Use Redis as the half-open probe: report the outcome.
        case probe
        /// Skip Redis.
        case bypass
    }

    private struct Guarded {
        var currentOptions: CircuitBreakerOptions
        var current = State.closed
        var consecutiveFailures = 0
        var openedAt = 0.0
        var probeInFlight = false
        var notOpenSince: Double?
        var accumulatedOpenSeconds = 0.0
        var openings = 0
        var bypasses = 0
        var openedSince = 0.0
    }

    private let guarded: Mutex<Guarded>

    public init(options: CircuitBreakerOptions = .standard) {
        guarded = Mutex(Guarded(currentOptions: options))
    }

    /// Its threshold and cool-down (a scenario may set its own: `workload.breaker`).
    public var options: CircuitBreakerOptions {
        guarded.withLock { $0.currentOptions }
    }

    public var state: State {
        guarded.withLock { $0.current }
    }

    /// Seconds spent not closed (open or half-open), including the current spell.
    public var openSeconds: Double {
        guarded.withLock { $0.accumulatedOpenSeconds + ($0.current == .closed ? 0 : monotonicSeconds() - $0.openedSince) }
    }

    /// How often it opened from closed.
    public var openCount: Int {
        guarded.withLock { $0.openings }
    }

    /// Calls that skipped Redis because the breaker was not closed.
    public var bypassCount: Int {
        guarded.withLock { $0.bypasses }
    }

    /// What the caller may do, and the state the breaker moved to if this call changed it.
    public func permission() -> (Permission, changed: State?) {
        guarded.withLock { g in
            var changed: State?
            let answer: Permission
            switch g.current {
            case .closed:
                answer = .call
            case .open:
                if monotonicSeconds() - g.openedAt >= g.currentOptions.coolDownSeconds {
                    g.current = .halfOpen
                    g.probeInFlight = true
                    changed = .halfOpen
                    answer = .probe
                } else {
                    g.bypasses += 1
                    answer = .bypass
                }
            case .halfOpen:
                if g.probeInFlight {
                    g.bypasses += 1
                    answer = .bypass
                } else {
                    g.probeInFlight = true
                    answer = .probe
                }
            }
            return (answer, changed)
        }
    }

    /// Redis answered. Returns the new state if it changed.
    @discardableResult
    public func recordSuccess() -> State? {
        guarded.withLock { g in
            g.consecutiveFailures = 0
            var changed: State?
            if g.current != .closed {
                g.accumulatedOpenSeconds += monotonicSeconds() - g.openedSince
                g.current = .closed
                g.probeInFlight = false
                changed = .closed
            }
            return changed
        }
    }

    /// Redis failed (refused, timed out, lost the connection). Returns the new state if it changed.
    @discardableResult
    public func recordFailure() -> State? {
        guarded.withLock { g in
            var changed: State?
            let now = monotonicSeconds()
            switch g.current {
            case .closed:
                g.consecutiveFailures += 1
                if g.consecutiveFailures >= g.currentOptions.failureThreshold {
                    g.current = .open
                    g.openedAt = now
                    g.openedSince = now
                    g.openings += 1
                    changed = .open
                }
            case .halfOpen:
                g.current = .open
                g.openedAt = now
                g.probeInFlight = false
                changed = .open
            case .open:
                g.openedAt = now
            }
            return changed
        }
    }

    /// Back to closed with every count at zero (a new run), with `options` from now on if given.
    public func reset(options: CircuitBreakerOptions? = nil) {
        guarded.withLock { g in
            if let options { g.currentOptions = options }
            g.current = .closed
            g.consecutiveFailures = 0
            g.probeInFlight = false
            g.accumulatedOpenSeconds = 0
            g.openings = 0
            g.bypasses = 0
        }
    }
}
