import LockProofLocking
import LockProofPostgres

/// Case 5: cart quantity and order state changes, guarded by the version column alone.

public enum OrderStatus: String, Sendable, CaseIterable, Codable {
    case pending = "PENDING"
    case paying = "PAYING"
    case paid = "PAID"
    case paymentFailed = "PAYMENT_FAILED"
    case completed = "COMPLETED"
    case cancelled = "CANCELLED"

    /// The state machine: every transition not listed is invalid.
    public var allowedNext: Set<OrderStatus> {
        switch self {
        case .pending: return [.paying, .completed, .cancelled]
        case .paying: return [.paid, .paymentFailed]
        case .paid: return [.completed]
        case .paymentFailed, .completed, .cancelled: return []
        }
    }

    public func canMove(to next: OrderStatus) -> Bool { allowedNext.contains(next) }
}

public enum StateChangeStrategy: String, Sendable, CaseIterable, Codable {
    /// Optimistic version check, no retry: the loser of a race gets a conflict.
    case seed
    /// The optimistic check with the seed's retry policy (claim 10 asks whether it is needed).
    case optimisticRetry = "optimistic-retry"
    /// Read, check, write with no version check: last write wins. The negative control.
    case naive
    /// The negative control of the cart checker's upper bound (issue 21): the seed's add, then the
    /// same add sent once more after it was acknowledged (a retry wrapper that also retries a
    /// success), so a line ends above every add that was made. Order state: as `seed`.
    case addedTwice = "added-twice"
    /// The negative control of single-winner's stored state: the seed's version check, but the
    /// update bumps the version and writes back the status it read, so the acknowledged winner's
    /// state is never stored. Cart: as `seed`.
    case statusNotSet = "status-not-set"
    /// The negative control of single-winner's unchanged orders: the transition commits, then a
    /// check after the commit finds the order no longer in the state it read (its own update moved
    /// it) and answers a conflict: the order changed while no transition was acknowledged. Cart: as
    /// `seed`.
    case stateRechecked = "state-rechecked"
    /// The negative control of single-winner's "at most one winner per order" alone: the seed's
    /// version check, but a transition asked of an order already in that state is answered as done
    /// (an "idempotent" reply), so a second complete of a completed order is acknowledged too. The
    /// stored state is the first winner's, no order changes without one. Cart: as `seed`.
    case repeatAcknowledged = "repeat-acknowledged"
}

public struct OrderTransition: Sendable, Equatable {
    public let orderId: Int
    public let from: OrderStatus
    public let to: OrderStatus

    public init(orderId: Int, from: OrderStatus, to: OrderStatus) {
        self.orderId = orderId
        self.from = from
        self.to = to
    }
}

/// Order state changes by users and the system (complete, cancel).
public struct OrderState {
    public let client: CommerceClient
    public let strategy: StateChangeStrategy

    public init(client: CommerceClient, strategy: StateChangeStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public func complete(orderId: Int) throws -> OrderTransition { try move(orderId, to: .completed) }
    public func cancel(orderId: Int) throws -> OrderTransition { try move(orderId, to: .cancelled) }

    /// Only the user-facing transitions are offered; payment moves PAYING/PAID itself.
    public func move(_ orderId: Int, to next: OrderStatus) throws -> OrderTransition {
        guard next == .completed || next == .cancelled else {
            throw DomainError.invalidTransition(orderId: orderId, from: .pending, to: next)
        }
        let probe = client.probe(.orderState)
        let policy = strategy == .optimisticRetry ? client.settings.retry : RetryPolicy.none
        let transition = try versioned(policy, probe, entity: "order", id: orderId) {
            try client.transaction(probe: probe) { db in
                let row = try db.query("SELECT status, version FROM orders WHERE id = $1", [orderId])
                guard let statusText = row.string(0, 0), let status = OrderStatus(rawValue: statusText),
                    let version = row.int(0, 1)
                else { throw DomainError.notFound(entity: "order", id: orderId) }
                if strategy == .repeatAcknowledged && status == next { return OrderTransition(orderId: orderId, from: status, to: next) }
                guard status.canMove(to: next) else {
                    throw DomainError.invalidTransition(orderId: orderId, from: status, to: next)
                }
                try client.think()
                if strategy == .statusNotSet {
                    // The version moves, the status read is written back.
                    let bumped = try db.query(
                        "UPDATE orders SET status = $1, version = version + 1, updated_at = now() WHERE id = $2 AND version = $3",
                        [status.rawValue, orderId, version])
                    guard bumped.affectedRows == 1 else { throw OptimisticConflict(entity: "order", id: orderId) }
                    return OrderTransition(orderId: orderId, from: status, to: next)
                }
                let updated: PostgresResult
                if strategy == .naive {
                    updated = try db.query(
                        "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2", [next.rawValue, orderId])
                } else {
                    updated = try db.query(
                        "UPDATE orders SET status = $1, version = version + 1, updated_at = now() WHERE id = $2 AND version = $3",
                        [next.rawValue, orderId, version])
                }
                guard updated.affectedRows == 1 else { throw OptimisticConflict(entity: "order", id: orderId) }
                return OrderTransition(orderId: orderId, from: status, to: next)
            }
        }
        if strategy == .stateRechecked {
            let now = try client.transaction(probe: probe) { db in
                try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0)
            }
            guard now == transition.from.rawValue else { throw DomainError.conflict(entity: "order", id: orderId) }
        }
        return transition
    }
}

public struct CartUpdate: Sendable, Equatable {
    public let userId: Int
    public let productId: Int
    public let quantity: Int
}

/// Adding to a cart: read the line, write back quantity + delta.
public struct CartQuantity {
    public let client: CommerceClient
    public let strategy: StateChangeStrategy

    public init(client: CommerceClient, strategy: StateChangeStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public func add(userId: Int, productId: Int, quantity delta: Int) throws -> CartUpdate {
        guard delta > 0 else { throw DomainError.invalidQuantity(delta) }
        let update = try writeLine(userId: userId, productId: productId) { quantity in quantity + delta }
        if strategy == .addedTwice {
            // The negative control: the acknowledged add is sent once more.
            _ = try client.transaction(probe: client.probe(.cartQuantity)) { db in
                try db.query(
                    "UPDATE cart_items SET quantity = quantity + $1, version = version + 1 WHERE user_id = $2 AND product_id = $3",
                    [delta, userId, productId])
            }
        }
        return update
    }

    /// The read-then-write of case 5, shared by `add` and `set` (CartSetQuantity.swift): read the
    /// line and its version, write `next(quantity)` back under the strategy's version check; a lost
    /// race is retried under `optimistic-retry`, else it is `DomainError.conflict`.
    func writeLine(userId: Int, productId: Int, _ next: (Int) -> Int) throws -> CartUpdate {
        let probe = client.probe(.cartQuantity)
        let policy = strategy == .optimisticRetry ? client.settings.retry : RetryPolicy.none
        let update = try versioned(policy, probe, entity: "cart_item", id: productId) {
            try client.transaction(probe: probe) { db in
                guard try db.query("SELECT 1 FROM users WHERE id = $1", [userId]).rowCount == 1 else {
                    throw DomainError.notFound(entity: "user", id: userId)
                }
                guard try db.query("SELECT 1 FROM products WHERE id = $1", [productId]).rowCount == 1 else {
                    throw DomainError.notFound(entity: "product", id: productId)
                }
                // The line exists from the first add on; creating it is not the race under test.
                try db.query(
                    "INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                    [userId, productId])
                let row = try db.query(
                    "SELECT id, quantity, version FROM cart_items WHERE user_id = $1 AND product_id = $2", [userId, productId])
                let (id, quantity, version) = (row.int(0, 0)!, row.int(0, 1)!, row.int(0, 2)!)
                try client.think()
                let written = next(quantity)
                let updated: PostgresResult
                if strategy == .naive {
                    updated = try db.query("UPDATE cart_items SET quantity = $1 WHERE id = $2", [written, id])
                } else {
                    updated = try db.query(
                        "UPDATE cart_items SET quantity = $1, version = version + 1 WHERE id = $2 AND version = $3",
                        [written, id, version])
                }
                guard updated.affectedRows == 1 else { throw OptimisticConflict(entity: "cart_item", id: id) }
                return CartUpdate(userId: userId, productId: productId, quantity: written)
            }
        }
        return update
    }
}

/// Runs an optimistic operation; without retries a lost race becomes a clear `DomainError.conflict`.
private func versioned<T>(
    _ policy: RetryPolicy, _ probe: Probe, entity: String, id: Int, _ body: () throws -> T
) throws -> T {
    do {
        return try withOptimisticRetry(policy, probe: probe) { _ in try body() }
    } catch let conflict as OptimisticConflict {
        throw DomainError.conflict(entity: conflict.entity, id: conflict.id)
    }
}
