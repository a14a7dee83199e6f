import Foundation

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

/// The circuit breaker around Redis, shared by every client of a process (Resilience4j's states).
/// Closed: calls go to Redis. Open: calls skip Redis, so the cases run on their database locks
/// alone. Half-open: after the cool-down, exactly one call probes Redis; its success closes the
/// breaker, its failure opens it for another cool-down. Thread-safe.
public final class CircuitBreaker: @unchecked Sendable {
    public enum State: String, Sendable, CaseIterable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    /// What a caller may do now.
    public enum Permission: Sendable, Equatable {
        /// Use Redis.
        case call
        /// Use Redis as the half-open probe: report the outcome.
        case probe
        /// Skip Redis.
        case bypass
    }

    private let lock = NSLock()
    private var currentOptions: CircuitBreakerOptions
    private var current = State.closed
    private var consecutiveFailures = 0
    private var openedAt = 0.0
    private var probeInFlight = false
    private var notOpenSince: Double?
    private var accumulatedOpenSeconds = 0.0
    private var openings = 0
    private var bypasses = 0

    public init(options: CircuitBreakerOptions = .standard) {
        currentOptions = options
    }

    /// Its threshold and cool-down (a scenario may set its own: `workload.breaker`).
    public var options: CircuitBreakerOptions {
        lock.lock()
        defer { lock.unlock() }
        return currentOptions
    }

    public var state: State {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Seconds spent not closed (open or half-open), including the current spell.
    public var openSeconds: Double {
        lock.lock()
        defer { lock.unlock() }
        return accumulatedOpenSeconds + (current == .closed ? 0 : monotonicSeconds() - openedSince)
    }

    /// How often it opened from closed.
    public var openCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return openings
    }

    /// Calls that skipped Redis because the breaker was not closed.
    public var bypassCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return bypasses
    }

    private var openedSince = 0.0

    /// What the caller may do, and the state the breaker moved to if this call changed it.
    public func permission() -> (Permission, changed: State?) {
        lock.lock()
        var changed: State?
        let answer: Permission
        switch current {
        case .closed:
            answer = .call
        case .open:
            if monotonicSeconds() - openedAt >= currentOptions.coolDownSeconds {
                current = .halfOpen
                probeInFlight = true
                changed = .halfOpen
                answer = .probe
            } else {
                bypasses += 1
                answer = .bypass
            }
        case .halfOpen:
            if probeInFlight {
                bypasses += 1
                answer = .bypass
            } else {
                probeInFlight = true
                answer = .probe
            }
        }
        lock.unlock()
        return (answer, changed)
    }

    /// Redis answered. Returns the new state if it changed.
    @discardableResult
    public func recordSuccess() -> State? {
        lock.lock()
        consecutiveFailures = 0
        var changed: State?
        if current != .closed {
            accumulatedOpenSeconds += monotonicSeconds() - openedSince
            current = .closed
            probeInFlight = false
            changed = .closed
        }
        lock.unlock()
        return changed
    }

    /// Redis failed (refused, timed out, lost the connection). Returns the new state if it changed.
    @discardableResult
    public func recordFailure() -> State? {
        lock.lock()
        var changed: State?
        let now = monotonicSeconds()
        switch current {
        case .closed:
            consecutiveFailures += 1
            if consecutiveFailures >= currentOptions.failureThreshold {
                current = .open
                openedAt = now
                openedSince = now
                openings += 1
                changed = .open
            }
        case .halfOpen:
            current = .open
            openedAt = now
            probeInFlight = false
            changed = .open
        case .open:
            openedAt = now
        }
        lock.unlock()
        return changed
    }

    /// Back to closed with every count at zero (a new run), with `options` from now on if given.
    public func reset(options: CircuitBreakerOptions? = nil) {
        lock.lock()
        if let options { currentOptions = options }
        current = .closed
        consecutiveFailures = 0
        probeInFlight = false
        accumulatedOpenSeconds = 0
        openings = 0
        bypasses = 0
        lock.unlock()
    }
}
