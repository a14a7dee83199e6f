import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// Jepsen's three endings of an operation.
public enum HistoryOutcome: String, Sendable, Codable {
    /// Acknowledged: it happened.
    case ok
    /// It did not happen (refused or failed before commit).
    case fail
    /// It may or may not have happened: checkers widen their bounds for it.
    case unknown
}

/// One operation as a client saw it.
public struct HistoryEntry: Sendable, Codable, Equatable {
    public let client: Int
    /// The client's n-th operation, from 0.
    public let index: Int
    /// `charge`, `pay`, `issue`, `create`, `complete`, `cancel`, `add`.
    public let operation: String
    /// Ids and amounts it was called with (`user`, `order`, `coupon`, `product`, `amount`, `quantity`).
    public let arguments: [String: Int]
    /// Order lines, for `create` and `pay`.
    public let items: [OrderItemRequest]?
    /// Seconds since the run started.
    public let start: Double
    public let end: Double
    public let outcome: HistoryOutcome
    /// The typed reason of a `fail` or `unknown` (e.g. `insufficient_balance`, `deadlock`).
    public let reason: String?
    /// What an `ok` returned that checkers need (e.g. the created `order`, the order `total`).
    public let result: [String: Int]?
    /// The idempotency key it was sent with, if any: an "already applied" answer is only right
    /// when another operation applied that key.
    public let key: String?

    public var seconds: Double { end - start }

    public init(
        client: Int, index: Int, operation: String, arguments: [String: Int], items: [OrderItemRequest]?, start: Double,
        end: Double, outcome: HistoryOutcome, reason: String?, result: [String: Int]?, key: String? = nil
    ) {
        self.client = client
        self.index = index
        self.operation = operation
        self.arguments = arguments
        self.items = items
        self.start = start
        self.end = end
        self.outcome = outcome
        self.reason = reason
        self.result = result
        self.key = key
    }
}

/// A short, fixed name for why an operation did not succeed.
public func reasonName(_ error: any Error) -> String {
    switch error {
    case let error as DomainError:
        switch error {
        case .notFound: return "not_found"
        case .invalidAmount: return "invalid_amount"
        case .invalidQuantity: return "invalid_quantity"
        case .emptyOrder: return "empty_order"
        case .insufficientBalance: return "insufficient_balance"
        case .insufficientStock: return "insufficient_stock"
        case .soldOut: return "sold_out"
        case .alreadyIssued(_, _, let detectedBy): return "already_issued_by_\(detectedBy.rawValue)"
        case .invalidTransition: return "invalid_transition"
        case .conflict: return "conflict"
        case .orderNotPayable: return "order_not_payable"
        case .paymentDeclined: return "payment_declined"
        }
    case let error as PostgresError:
        switch error.kind {
        case .deadlock: return "deadlock"
        case .serializationFailure: return "serialization_failure"
        case .uniqueViolation: return "unique_violation"
        case .checkViolation: return "check_violation"
        case .foreignKeyViolation: return "foreign_key_violation"
        case .lockNotAvailable: return "lock_timeout"
        case .queryCanceled: return "query_canceled"
        case .connectionLost: return "connection_lost"
        case .connectionFailed: return "connection_failed"
        case .other: return "database_error"
        }
    case is RetryExhausted: return "retry_exhausted"
    case is LockTimeout: return "redis_lock_timeout"
    case is RedisError: return "redis_error"
    case is GatewayDeclined: return "payment_declined"
    default: return "error"
    }
}
