import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// A refusal by the business rules or bad input. Nothing was written.
public enum DomainError: Error, Equatable, CustomStringConvertible, Sendable {
    case notFound(entity: String, id: Int)
    case invalidAmount(Int)
    case invalidQuantity(Int)
    case emptyOrder
    case insufficientBalance(userId: Int, balance: Int, required: Int)
    case insufficientStock(productId: Int, available: Int, requested: Int)
    case soldOut(couponId: Int)
    case alreadyIssued(userId: Int, couponId: Int, detectedBy: DuplicateDetection)
    case invalidTransition(orderId: Int, from: OrderStatus, to: OrderStatus)
    /// Lost an optimistic race and the strategy does not retry.
    case conflict(entity: String, id: Int)
    case orderNotPayable(orderId: Int, status: OrderStatus)
    /// The gateway refused; balance and stock were restored.
    case paymentDeclined(orderId: Int, reason: String)

    public var description: String {
        switch self {
        case .notFound(let entity, let id): return "\(entity) \(id) does not exist"
        case .invalidAmount(let amount): return "amount must be positive, got \(amount)"
        case .invalidQuantity(let quantity): return "quantity must be positive, got \(quantity)"
        case .emptyOrder: return "an order needs at least one item"
        case .insufficientBalance(let user, let balance, let required):
            return "user \(user) has balance \(balance), needs \(required)"
        case .insufficientStock(let product, let available, let requested):
            return "product \(product) has stock \(available), requested \(requested)"
        case .soldOut(let coupon): return "coupon \(coupon) is sold out"
        case .alreadyIssued(let user, let coupon, let detectedBy):
            return "user \(user) already has coupon \(coupon) (detected by \(detectedBy.rawValue))"
        case .invalidTransition(let order, let from, let to):
            return "order \(order) cannot go from \(from.rawValue) to \(to.rawValue)"
        case .conflict(let entity, let id): return "\(entity) \(id) was changed concurrently; try again"
        case .orderNotPayable(let order, let status): return "order \(order) is \(status.rawValue), not PENDING"
        case .paymentDeclined(let order, let reason): return "payment of order \(order) declined: \(reason)"
        }
    }
}

/// A refusal by a case's own business rule, as a type of the case's own beside `DomainError` (a
/// new case adds no arm to `DomainError`): nothing was written; its outcome is `rejected` and
/// its history reason is `reason`.
public protocol BusinessRefusal: Error {
    /// A short, fixed name for the history and reports (`daily_limit_exceeded`).
    var reason: String { get }
}

/// Which layer caught a duplicate coupon request (claim 6 of the seed measures the first).
public enum DuplicateDetection: String, Sendable, Equatable {
    case applicationCheck = "application_check"
    case uniqueConstraint = "unique_constraint"
}

/// How an operation ended, in Jepsen's terms with the business refusal split out.
public enum OperationOutcome: String, Sendable, CaseIterable, Codable {
    /// Acknowledged: it happened.
    case success
    /// A business refusal (sold out, insufficient balance, invalid transition, lost race): nothing happened.
    case rejected
    /// It failed (deadlock, timeout, retries exhausted): nothing happened.
    case error
    /// It may or may not have happened (the connection dropped before the commit was confirmed).
    case unknown

    public static func classify(_ error: any Error) -> OperationOutcome {
        switch error {
        case is DomainError, is any BusinessRefusal: return .rejected
        case let error as PostgresError: return error.kind == .connectionLost ? .unknown : .error
        case is ClientCrashed, is GatewayTimeout, is PaymentInterrupted: return .unknown
        default: return .error
        }
    }
}

/// A payment whose deduction committed and whose client then failed before settling it (see
/// `ProcessPayment.pay`): its intent stays open for `PaymentRecovery`. Unknown to the checkers;
/// reported under the reason of its cause.
public struct PaymentInterrupted: Error, CustomStringConvertible, Sendable {
    public let orderId: Int
    public let cause: any Error
    public init(orderId: Int, cause: any Error) {
        self.orderId = orderId
        self.cause = cause
    }
    public var description: String { "payment of order \(orderId) interrupted after its deduction: \(cause)" }
}
