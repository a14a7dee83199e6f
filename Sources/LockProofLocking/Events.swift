import LockProofPostgres

#if canImport(Glibc)
    import Glibc
#endif

/// Which kind of lock a wait or failure concerns.
public enum LockKind: String, Sendable, CaseIterable {
    case redis
    case row
}

public enum LockFailureReason: String, Sendable, CaseIterable {
    case timeout
    case error
}

/// Which connection pool a wait concerns (`workload.connections`).
public enum PoolKind: String, Sendable, CaseIterable {
    case postgres
    case redis
}

/// Resilience4j's names for how a retried call ended.
public enum RetryCallKind: String, Sendable, CaseIterable {
    case successfulWithoutRetry = "successful_without_retry"
    case successfulWithRetry = "successful_with_retry"
    case failedWithoutRetry = "failed_without_retry"
    case failedWithRetry = "failed_with_retry"
}

/// Something the locking primitives or the cases saw happen. The metrics layer turns these into
/// Prometheus series; a scenario's history can record them too.
public enum LockProofEvent: Sendable, Equatable {
    case lockWaited(LockKind, seconds: Double)
    /// How long a lock was held: a Redis lock from acquisition to release, row locks from the
    /// first one acquired to the end (commit or rollback) of their transaction.
    case lockHeld(LockKind, seconds: Double)
    case lockAcquireFailed(LockKind, LockFailureReason)
    /// A retry after a conflict (the first attempt is not a retry).
    case retryAttempt
    case retryExhausted
    case retryCall(RetryCallKind)
    case optimisticConflict(entity: String)
    /// A deadlock, serialization failure or unique violation raised by the server.
    case databaseError(PostgresError.Kind, constraint: String?)
    case compensation(succeeded: Bool)
    /// A lease expired while held, or a stale fencing token was refused.
    case distributedLockLost
    /// The database refused a write whose fencing token was older than the last it accepted.
    /// Counted as a lost lock as well.
    case fencedWriteRefused
    /// The Redis circuit breaker changed state (process-wide: the case is the caller's).
    case circuitBreaker(CircuitBreaker.State)
    /// The Redis lock was skipped because the breaker was open: database locks alone.
    case redisLockBypassed
    /// A virtual user waited for a pooled connection; `holdingLock`: while holding a Redis lock,
    /// so the wait lengthened that lock's hold. Process-wide (no case).
    case poolWaited(PoolKind, seconds: Double, holdingLock: Bool)
    /// Redis granted `handle`'s lock: `requestedAt` when the winning attempt was sent (its lease
    /// runs from no earlier), `at` when Redis' reply came back (the lock was held by then);
    /// `renewed`: the watchdog renews its lease (else it ends a lease after it was set).
    /// Monotonic seconds (`monotonicSeconds()`). A run records it in its history as a hold's start.
    case lockAcquired(LockHandle, requestedAt: Double, at: Double, renewed: Bool)
    /// `handle`'s release was sent at `requestedAt` (monotonic seconds): the lock was held up to then
    /// at least if Redis answered that the token was still there (`released`), lost before it if
    /// Redis answered that it was not, unknown when no answer came (nil). `renewedAt`: when the
    /// watchdog sent the last renewal Redis confirmed (the lease runs from no earlier), if any.
    case lockReleased(LockHandle, requestedAt: Double, released: Bool?, renewedAt: Double?)
}

/// Receives events; must be safe to call from many client threads at once.
public protocol EventSink: Sendable {
    func record(_ event: LockProofEvent, caseName: String)
}

/// Discards events.
public struct NoEventSink: EventSink {
    public init() {}
    public func record(_ event: LockProofEvent, caseName: String) {}
}

/// Events tagged with the case they belong to.
public struct Probe: Sendable {
    public let caseName: String
    public let sink: any EventSink

    public init(caseName: String, sink: any EventSink = NoEventSink()) {
        self.caseName = caseName
        self.sink = sink
    }

    public func record(_ event: LockProofEvent) { sink.record(event, caseName: caseName) }

    /// Records the server-side conflicts an error carries (deadlock, serialization, unique violation).
    public func observe(_ error: any Error) {
        guard let error = error as? PostgresError else { return }
        switch error.kind {
        case .deadlock, .serializationFailure, .uniqueViolation:
            record(.databaseError(error.kind, constraint: error.constraint))
        default: break
        }
    }
}

/// Seconds on a monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000
}

public func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}
