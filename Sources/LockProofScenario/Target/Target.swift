import Foundation
import LockProofCommerce

/// An implementation of the cases that LockProof drives through its HTTP API and judges by its own
/// database (issue 18): everything LockProof needs to know about it, read from `targets/NAME.yaml`
/// by `TargetParser` (the format is documented in targets/README.md).
public struct Target: Sendable, Equatable {
    public let file: String
    public let name: String
    public let description: String
    /// Base URLs as written: they may hold `${VARIABLE}`s, resolved by `resolvedBaseURLs`.
    public let baseURLs: [String]
    public let spread: Spread
    /// The environment variable holding the implementation's database URL (never the URL itself:
    /// a file in a repository holds no password).
    public let databaseURLVariable: String
    public let connectTimeoutSeconds: Double
    public let requestTimeoutSeconds: Double
    /// Headers on every request.
    public let headers: [TargetHeader]
    /// By operation name (`charge`, `pay`, `issue`, `create`, `complete`, `cancel`, `add`).
    public let operations: [String: TargetOperation]
    public let reset: [TargetStatement]
    /// Per seeded entity kind, the statements run once per entity with its values bound.
    public let seed: [SeedKind: [TargetStatement]]
    /// Run once after every entity was seeded (sequences, statistics).
    public let seedAfter: [TargetStatement]
    /// The queries that give the checkers what they judge; a kind not here is not checked.
    public let state: [StateKind: TargetStatement]
    /// How the virtual users' requests are driven (`--client-engine`); not part of the file.
    public var clientEngine: ClientEngine = .events

    /// The engines of a run through a target (issue 18).
    public enum ClientEngine: String, Sendable, CaseIterable {
        /// A few loop threads (`ClientLoop.defaultLoopThreads`) drive every user's non-blocking
        /// keep-alive socket with epoll.
        case events
        /// One thread per virtual user, blocking on its socket (the engine before issue 18, kept to compare).
        case threads
    }

    /// How virtual users spread over several instances.
    public enum Spread: String, Sendable, CaseIterable {
        /// Virtual user i talks to instance i mod N for the whole run.
        case roundRobin = "round-robin"
        /// Every request goes to an instance picked at random (from the scenario's random seed).
        case random
    }

    /// The entities a scenario's seed creates, and the values each kind's statement may bind.
    public enum SeedKind: String, Sendable, CaseIterable {
        case users, products, coupons, orders
        case orderItems = "order_items"
        case cartLines = "cart_lines"
        /// Every user's daily spending limit (the sixth case's `seed.daily_limit`).
        case spendingLimits = "spending_limits"

        public var parameters: [String] {
            switch self {
            case .users: return ["id", "balance"]
            case .products: return ["id", "price", "stock"]
            case .coupons: return ["id", "quantity"]
            case .orders: return ["id", "user", "total"]
            case .orderItems: return ["order", "product", "quantity", "price"]
            case .cartLines: return ["user", "product", "quantity"]
            case .spendingLimits: return ["user", "daily_limit"]
            }
        }
    }

    /// What the checkers read of the final state, and the columns each query must return.
    public enum StateKind: String, Sendable, CaseIterable {
        case balances
        case balanceLedger = "balance_ledger"
        case stock
        case stockLedger = "stock_ledger"
        case orders
        case orderItems = "order_items"
        case coupons
        case couponIssues = "coupon_issues"
        case cartLines = "cart_lines"
        case compensations
        case spendingLimits = "spending_limits"
        case spends

        public var columns: [String] {
            switch self {
            case .balances: return ["user", "balance"]
            case .balanceLedger: return ["user", "delta", "reason", "reference"]
            case .stock: return ["product", "stock"]
            case .stockLedger: return ["product", "delta", "reason", "reference"]
            case .orders: return ["order", "user", "total", "status"]
            case .orderItems: return ["order", "product", "quantity"]
            case .coupons: return ["coupon", "total", "issued"]
            case .couponIssues: return ["coupon", "user"]
            case .cartLines: return ["user", "product", "quantity"]
            case .compensations: return ["order", "status"]
            case .spendingLimits: return ["user", "daily_limit"]
            // `day`: the date the implementation counts the spend against its daily limit.
            case .spends: return ["user", "day", "amount"]
            }
        }
    }

    /// The operations a scenario may run, with the arguments their templates may use and the
    /// results their responses may give the history.
    public static let operationNames = OperationName.allCases.map(\.rawValue)

    public static func arguments(of operation: String) -> [String] {
        switch operation {
        case "charge": return ["user", "amount", "key"]
        case "pay", "complete", "cancel": return ["order"]
        case "issue": return ["user", "coupon"]
        case "create": return ["user"]
        case "add": return ["user", "product", "quantity"]
        case "spend": return ["user", "amount"]
        default: return []
        }
    }

    /// Arguments an operation does not always have: a header or body field made only of one is
    /// left out when it is absent (`key`: only when the scenario sends idempotency keys).
    public static let optionalArguments: Set<String> = ["key"]

    public static func results(of operation: String) -> [String] {
        switch operation {
        case "charge": return ["balance", "applied", "attempts"]
        case "pay": return ["amount", "user"]
        case "issue": return ["issued_quantity"]
        case "create": return ["order", "total"]
        case "add": return ["quantity"]
        case "spend": return ["spent_today"]
        default: return []
        }
    }

    /// The seeded entities each operation works on: a target running it must seed them.
    public static func seedNeeded(by operation: String) -> [SeedKind] {
        switch operation {
        case "charge": return [.users]
        case "pay": return [.users, .products, .orders, .orderItems]
        case "complete", "cancel": return [.users, .orders]
        case "issue": return [.users, .coupons]
        case "create", "add": return [.users, .products]
        case "spend": return [.users, .spendingLimits]
        default: return []
        }
    }

    /// The reasons a `fail` or `unknown` may carry: those LockProof's own runs record (so that
    /// checkers and reports read a target's history like any other), and those only HTTP has.
    public static let knownReasons: [String] = [
        // business refusals
        "not_found", "invalid_amount", "invalid_quantity", "empty_order", "invalid_input", "insufficient_balance",
        "insufficient_stock", "sold_out", "already_issued", "already_issued_by_application_check",
        "already_issued_by_unique_constraint", "invalid_transition", "conflict", "order_not_payable", "payment_declined",
        "rate_limited", "daily_limit_exceeded",
        // the database and the service's resources
        "deadlock", "serialization_failure", "unique_violation", "check_violation", "foreign_key_violation",
        "lock_timeout", "query_canceled", "database_error", "retry_exhausted", "pool_timeout", "redis_error",
        "redis_lock_timeout", "gateway_timeout", "compensation_failed", "unavailable",
        // outcomes the client cannot tell
        "server_error", "timeout", "connection_lost", "connection_failed", "unexpected_response", "error",
    ]

    /// The request of `operation` for its arguments, with the target's common headers; nil when the
    /// target does not describe the operation.
    public func request(
        _ operation: String, arguments: [String: TargetValue], items: [(product: Int, quantity: Int)] = []
    ) -> TargetRequest? {
        operations[operation]?.request(arguments: arguments, items: items, commonHeaders: headers)
    }

    /// The operations of `wanted` this target does not describe: a scenario running any of them is
    /// refused before anything is written.
    public func missingOperations(_ wanted: some Sequence<String>) -> [String] {
        Set(wanted).subtracting(operations.keys).sorted()
    }
}
