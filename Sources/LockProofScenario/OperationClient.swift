import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// How one invocation ended, as a client saw it: Jepsen's completion.
public struct Completion: Sendable, Equatable {
    /// success, rejected (a business refusal), error, unknown (it may have happened).
    public let outcome: OperationOutcome
    /// The typed reason of anything but a success (`insufficient_balance`, `deadlock`, …).
    public let reason: String?
    /// What a success returned that checkers need (the created `order`, the `balance`, …).
    public let result: [String: Int]?

    public init(outcome: OperationOutcome, reason: String?, result: [String: Int]?) {
        self.outcome = outcome
        self.reason = reason
        self.result = result
    }

    /// The history's ending: ok, fail or unknown.
    public var historyOutcome: HistoryOutcome {
        switch outcome {
        case .success: return .ok
        case .unknown: return .unknown
        case .rejected, .error: return .fail
        }
    }
}

/// Jepsen's client: performs the operations a generator yields against one implementation of
/// the cases. `open` before the first, `close` after the last; `invoke` never throws (whatever
/// goes wrong is the completion's outcome and reason). Used from one thread.
public protocol Client: AnyObject {
    func open() throws
    func invoke(_ invocation: Invocation) -> Completion
    func close()
}

/// A client whose invocations do not block its thread (issue 18): it starts one and reports the
/// completion later, on the thread of the `EventLoop` that drives it, so that one loop thread
/// drives many virtual users. `open` before the first (on the loop's thread, before the start
/// barrier), `close` after the last; one invocation at a time; `completed` is called exactly once
/// per `start`, never before `start` returns. Clients that block (libpq) stay `Client`s on threads
/// of their own.
public protocol EventDrivenClient: AnyObject {
    func open(on loop: EventLoop) throws
    func start(_ invocation: Invocation, completed: @escaping (Completion) -> Void)
    func close()
}

/// The in-process core as a client: each invocation runs the case's descriptor on a
/// `CommerceClient` (its own connections, or borrowed from the run's pools).
public final class InProcessClient: Client {
    private let make: () throws -> CommerceClient
    /// The core, once open (client-side faults and tracing attach to it).
    public private(set) var core: CommerceClient?

    public init(_ make: @escaping () throws -> CommerceClient) { self.make = make }

    public func open() throws { core = try make() }

    public func invoke(_ invocation: Invocation) -> Completion {
        guard let core else { preconditionFailure("invoke before open") }
        let completion: Completion
        do {
            completion = Completion(outcome: .success, reason: nil, result: try invocation.perform(on: core))
        } catch {
            let outcome = OperationOutcome.classify(error)
            if outcome == .unknown { core.recoverConnections() }
            completion = Completion(outcome: outcome, reason: reasonName(error), result: nil)
        }
        // A pooled session borrowed for the whole operation goes back before the next one.
        core.releaseConnections()
        return completion
    }

    public func close() { core?.releaseConnections() }
}

extension HistoryEntry {
    /// The entry of one invocation that completed.
    public init(client: Int, index: Int, _ invocation: Invocation, start: Double, end: Double, _ completion: Completion) {
        self.init(
            client: client, index: index, operation: invocation.operation, arguments: invocation.arguments,
            items: invocation.items, start: start, end: end, outcome: completion.historyOutcome, reason: completion.reason,
            result: completion.result, key: invocation.key)
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
    case let error as any BusinessRefusal: return error.reason
    case let error as PaymentInterrupted: return reasonName(error.cause)
    case is RetryExhausted: return "retry_exhausted"
    case is PoolTimeout: return "pool_timeout"
    case is ClientCrashed: return "client_crashed"
    case is GatewayTimeout: return "gateway_timeout"
    case is FencedWriteRefused: return "fenced_write_refused"
    case is InjectedCompensationFailure: return "compensation_failed"
    case is LockTimeout: return "redis_lock_timeout"
    case is RedisError: return "redis_error"
    case is GatewayDeclined: return "payment_declined"
    default: return "error"
    }
}
