import LockProofConfiguration
import Foundation
import LockProofAPI
import LockProofCommerce
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import LockProofPostgres
import LockProofRedis

// Problems: the problem document (RFC 9457) for each error of the core, and its HTTP response.

extension APIService {
    /// The problem document for an error of the core, with the outcome a client may assume.
    public static func problem(for error: any Error) -> APIProblem {
        switch error {
        case let problem as APIProblem:
            return problem
        case let domain as DomainError:
            switch domain {
            case .notFound(let entity, let id):
                return APIProblem(status: 404, slug: "not-found", title: "Not found", detail: "\(entity) \(id) does not exist")
            case .invalidAmount, .invalidQuantity, .emptyOrder:
                return APIProblem(status: 422, slug: "invalid-request", title: "Invalid request", detail: domain.description)
            case .soldOut:
                return APIProblem(status: 410, slug: "sold-out", title: "Sold out", detail: domain.description)
            case .insufficientBalance:
                return APIProblem(status: 409, slug: "insufficient-balance", title: "Insufficient balance", detail: domain.description)
            case .insufficientStock:
                return APIProblem(status: 409, slug: "insufficient-stock", title: "Insufficient stock", detail: domain.description)
            case .alreadyIssued:
                return APIProblem(status: 409, slug: "already-issued", title: "Coupon already issued", detail: domain.description)
            case .invalidTransition, .orderNotPayable:
                return APIProblem(status: 409, slug: "invalid-transition", title: "Transition refused", detail: domain.description)
            case .conflict:
                return APIProblem(status: 409, slug: "conflict", title: "Concurrent change", detail: domain.description)
            case .paymentDeclined:
                return APIProblem(
                    status: 409, slug: "payment-declined", title: "Payment declined",
                    detail: domain.description + "; balance and stock were restored")
            }
        case let exceeded as DailyLimitExceeded:
            return APIProblem(
                status: 409, slug: "daily-limit-exceeded", title: "Daily limit exceeded", detail: exceeded.description)
        case let exhausted as RetryExhausted:
            return APIProblem(
                status: 409, slug: "retries-exhausted", title: "Lost every retry", detail: exhausted.description)
        case is FencedWriteRefused:
            return APIProblem(status: 409, slug: "conflict", title: "Concurrent change", detail: "\(error)")
        case let timeout as LockTimeout:
            return APIProblem(
                status: 503, slug: "lock-timeout", title: "Lock not acquired",
                detail: "\(timeout.description); nothing was done", retryAfterSeconds: 1)
        case let timeout as PoolTimeout:
            return APIProblem(
                status: 503, slug: "pool-exhausted", title: "No connection free",
                detail: "\(timeout.description); nothing was done", retryAfterSeconds: 1)
        case let redis as RedisError:
            return APIProblem(
                status: 503, slug: "dependency-unavailable", title: "Redis unavailable",
                detail: "\(redis.description); nothing was done", retryAfterSeconds: 5)
        case is GatewayTimeout:
            return APIProblem(
                status: 504, slug: "outcome-unknown", title: "Payment gateway timed out",
                detail: "\(error): the payment may or may not have happened; recovery settles it, GET the order to see",
                outcome: .unknown)
        case is PaymentInterrupted, is ClientCrashed:
            return APIProblem(
                status: 500, slug: "outcome-unknown", title: "Outcome unknown",
                detail: "\(error): it may or may not have happened; recovery settles an interrupted payment, GET the resource to see",
                outcome: .unknown)
        case let postgres as PostgresError:
            switch postgres.kind {
            case .connectionLost:
                return APIProblem(
                    status: 500, slug: "outcome-unknown", title: "Outcome unknown",
                    detail: "the database session was lost before the commit was confirmed: it may or may not have happened",
                    outcome: .unknown)
            case .connectionFailed:
                return APIProblem(
                    status: 503, slug: "dependency-unavailable", title: "PostgreSQL unavailable",
                    detail: "cannot reach PostgreSQL; nothing was done", retryAfterSeconds: 5)
            case .deadlock, .serializationFailure:
                return APIProblem(
                    status: 409, slug: "conflict", title: "Concurrent change",
                    detail: "PostgreSQL aborted the transaction (\(postgres.kind)); nothing was done")
            case .lockNotAvailable, .queryCanceled:
                return APIProblem(
                    status: 503, slug: "lock-timeout", title: "Row lock not acquired",
                    detail: "a row lock or statement timed out (\(postgres.kind)); the transaction was rolled back",
                    retryAfterSeconds: 1)
            case .uniqueViolation, .checkViolation, .foreignKeyViolation:
                return APIProblem(
                    status: 409, slug: "conflict", title: "Refused by a constraint",
                    detail: "a database constraint refused the change (\(postgres.kind)); nothing was done")
            case .other:
                return APIProblem(
                    status: 500, slug: "outcome-unknown", title: "Internal error",
                    detail: "PostgreSQL error: the outcome is unknown", outcome: .unknown)
            }
        default:
            return APIProblem(
                status: 500, slug: "outcome-unknown", title: "Internal error",
                detail: "\(type(of: error)): the outcome is unknown", outcome: .unknown)
        }
    }

    public static func response(_ problem: APIProblem, instance: String?) -> HTTPResponse {
        var headers: [HTTPHeader] = []
        if let retryAfter = problem.retryAfterSeconds { headers.append(HTTPHeader(name: "Retry-After", value: String(retryAfter))) }
        if !problem.allow.isEmpty { headers.append(HTTPHeader(name: "Allow", value: problem.allow.joined(separator: ", "))) }
        return HTTPResponse(
            status: problem.status, contentType: APIProblem.contentType, body: Array(problem.json(instance: instance).utf8),
            extraHeaders: headers)
    }
}
