import LockProofPostgres

/// A compare-and-set on a version column found the row changed by someone else.
public struct OptimisticConflict: Error, CustomStringConvertible, Sendable {
    public let entity: String
    public let id: Int
    public init(entity: String, id: Int) {
        self.entity = entity
        self.id = id
    }
    public var description: String { "optimistic conflict on \(entity) \(id): its version changed" }
}

/// Every attempt conflicted.
public struct RetryExhausted: Error, CustomStringConvertible, Sendable {
    public let attempts: Int
    public let lastError: String
    public var description: String { "retries exhausted after \(attempts) attempts; last: \(lastError)" }
}

/// Exponential backoff with full jitter, at most `maxAttempts` attempts in all.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    public var jitter: Bool

    /// The seed: 10 attempts, exponential backoff.
    public static let seed = RetryPolicy(maxAttempts: 10, baseDelay: 0.002, maxDelay: 0.1, jitter: true)
    /// One attempt: a conflict is reported, not retried.
    public static let none = RetryPolicy(maxAttempts: 1, baseDelay: 0, maxDelay: 0, jitter: false)

    public init(maxAttempts: Int, baseDelay: Double, maxDelay: Double, jitter: Bool) {
        precondition(maxAttempts >= 1, "a retry policy needs at least one attempt")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The pause before retry number `retry` (1-based).
    public func delay(beforeRetry retry: Int) -> Double {
        let ceiling = min(maxDelay, baseDelay * Double(1 << min(retry - 1, 20)))
        return jitter ? Double.random(in: 0...ceiling) : ceiling
    }
}

/// True for the failures that retrying the whole transaction can cure.
public func isRetryableConflict(_ error: any Error) -> Bool {
    if error is OptimisticConflict { return true }
    if let error = error as? PostgresError {
        return error.kind == .serializationFailure || error.kind == .deadlock
    }
    return false
}

/// Runs `body` (one whole transaction) until it succeeds, retrying conflicts with backoff.
/// `body` receives the attempt number, from 1.
public func withOptimisticRetry<T>(
    _ policy: RetryPolicy, probe: Probe, _ body: (Int) throws -> T
) throws -> T {
    var attempt = 1
    while true {
        do {
            let value = try body(attempt)
            probe.record(.retryCall(attempt == 1 ? .successfulWithoutRetry : .successfulWithRetry))
            return value
        } catch {
            let retryable = isRetryableConflict(error)
            if let conflict = error as? OptimisticConflict {
                probe.record(.optimisticConflict(entity: conflict.entity))
            }
            guard retryable, attempt < policy.maxAttempts else {
                probe.record(.retryCall(attempt == 1 ? .failedWithoutRetry : .failedWithRetry))
                if retryable && policy.maxAttempts > 1 {
                    probe.record(.retryExhausted)
                    throw RetryExhausted(attempts: attempt, lastError: String(describing: error))
                }
                throw error
            }
            probe.record(.retryAttempt)
            sleep(seconds: policy.delay(beforeRetry: attempt))
            attempt += 1
        }
    }
}
