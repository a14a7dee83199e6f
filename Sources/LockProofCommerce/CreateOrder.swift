import LockProofLocking
import LockProofPostgres

/// Case 4: create a PENDING order after checking stock. Stock is not deducted here: payment does it.
public enum CreateOrderStrategy: String, Sendable, CaseIterable, Codable {
    /// Redis lock `order:create:user:{id}`, `FOR UPDATE` on the products in ascending id order,
    /// stock check, insert.
    case seed
    /// The same, but locking the products in the client's item order. The deadlock negative control.
    case unsorted
    /// No Redis lock and no row locks: a plain read of the stock.
    case noLock = "no-lock"
    /// The negative control of order-creation's stock bound (issue 21): the seed's locks, but the
    /// stock check is skipped, so an order may ask for more than the product holds.
    case stockUnchecked = "stock-unchecked"
    /// The negative control of order-creation's items: the seed's locks, but only the first line
    /// of the order is stored.
    case firstItemOnly = "first-item-only"
    /// The negative control of order-creation's phantom bound: the seed's creation, then the same
    /// creation sent once more after it was acknowledged (a retry wrapper that also retries a
    /// success): an order that no acknowledged or unknown creation accounts for.
    case createdTwice = "created-twice"
    /// The negative control of order-creation's "every acknowledged order exists" alone: the
    /// seed's locks and stock check, but the order is written inside a savepoint that a dry-run
    /// path left on rolls back: the sequence handed out its id, the client is told the order was
    /// created, and neither the order nor its items are kept.
    case rolledBack = "rolled-back"
}

public struct OrderItemRequest: Sendable, Equatable, Codable {
    public let productId: Int
    public let quantity: Int
    public init(productId: Int, quantity: Int) {
        self.productId = productId
        self.quantity = quantity
    }

    enum CodingKeys: String, CodingKey {
        case productId = "product_id"
        case quantity
    }
}

public struct CreatedOrder: Sendable, Equatable {
    public let orderId: Int
    public let userId: Int
    public let totalAmount: Int
}

public struct CreateOrder {
    public let client: CommerceClient
    public let strategy: CreateOrderStrategy

    public init(client: CommerceClient, strategy: CreateOrderStrategy = .seed) {
        self.client = client
        self.strategy = strategy
    }

    public static func lockKey(userId: Int) -> String { "order:create:user:\(userId)" }

    public func create(userId: Int, items: [OrderItemRequest]) throws -> CreatedOrder {
        guard !items.isEmpty else { throw DomainError.emptyOrder }
        if let bad = items.first(where: { $0.quantity <= 0 }) { throw DomainError.invalidQuantity(bad.quantity) }
        let probe = client.probe(.createOrder)
        switch strategy {
        case .seed:
            return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                try insertOrder(userId, items, lockOrder: .ascending, probe)
            }
        case .unsorted:
            return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                try insertOrder(userId, items, lockOrder: .asGiven, probe)
            }
        case .noLock:
            return try insertOrder(userId, items, lockOrder: nil, probe)
        case .stockUnchecked, .firstItemOnly, .createdTwice, .rolledBack:
            return try client.withDistributedLock(Self.lockKey(userId: userId), probe: probe) {
                let created = try insertOrder(userId, items, lockOrder: .ascending, probe)
                if strategy == .createdTwice { _ = try insertOrder(userId, items, lockOrder: .ascending, probe) }
                return created
            }
        }
    }

    private enum LockOrder { case ascending, asGiven }

    private func insertOrder(
        _ userId: Int, _ items: [OrderItemRequest], lockOrder: LockOrder?, _ probe: Probe
    ) throws -> CreatedOrder {
        try client.transaction(probe: probe) { db in
            guard try db.query("SELECT 1 FROM users WHERE id = $1", [userId]).rowCount == 1 else {
                throw DomainError.notFound(entity: "user", id: userId)
            }
            var products: [Int: (price: Int, stock: Int)] = [:]
            if let lockOrder {
                let rows = try lockRowsForUpdate(
                    db, table: .products, ids: items.map(\.productId), ascending: lockOrder == .ascending,
                    columns: "price, stock", probe: probe)
                for (id, row) in rows { products[id] = (row.int(0, 0)!, row.int(0, 1)!) }
            } else {
                for item in items where products[item.productId] == nil {
                    let row = try db.query("SELECT price, stock FROM products WHERE id = $1", [item.productId])
                    if let price = row.int(0, 0), let stock = row.int(0, 1) { products[item.productId] = (price, stock) }
                }
            }
            // One product may appear on several lines: check the sum.
            var requested: [Int: Int] = [:]
            for item in items { requested[item.productId, default: 0] += item.quantity }
            var total = 0
            for (productId, quantity) in requested.sorted(by: { $0.key < $1.key }) {
                guard let product = products[productId] else { throw DomainError.notFound(entity: "product", id: productId) }
                guard product.stock >= quantity || strategy == .stockUnchecked else {
                    throw DomainError.insufficientStock(productId: productId, available: product.stock, requested: quantity)
                }
                total += product.price * quantity
            }
            try client.think()
            if strategy == .rolledBack { try db.query("SAVEPOINT dry_run") }
            let order = try db.query(
                "INSERT INTO orders (user_id, status, total_amount) VALUES ($1, 'PENDING', $2) RETURNING id", [userId, total])
            let orderId = order.int(0, 0)!
            for item in strategy == .firstItemOnly ? Array(items.prefix(1)) : items {
                try db.query(
                    "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4)",
                    [orderId, item.productId, item.quantity, products[item.productId]!.price])
            }
            if strategy == .rolledBack { try db.query("ROLLBACK TO SAVEPOINT dry_run") }
            return CreatedOrder(orderId: orderId, userId: userId, totalAmount: total)
        }
    }
}
