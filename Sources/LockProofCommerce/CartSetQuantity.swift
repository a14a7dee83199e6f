import LockProofLocking
import LockProofPostgres

extension CartQuantity {
    /// Sets a cart line's quantity (0 empties it; the line stays): the read-then-write of case 5
    /// under the same strategy as `add`, so that lowering a quantity is expressible. The seed
    /// strategy checks the version and does not retry: a lost race is `DomainError.conflict`.
    public func set(userId: Int, productId: Int, quantity: Int) throws -> CartUpdate {
        guard quantity >= 0 else { throw DomainError.invalidQuantity(quantity) }
        let probe = client.probe(.cartQuantity)
        let policy = strategy == .optimisticRetry ? client.settings.retry : RetryPolicy.none
        do {
            return try withOptimisticRetry(policy, probe: probe) { _ in
                try client.transaction(probe: probe) { db in
                    guard try db.query("SELECT 1 FROM users WHERE id = $1", [userId]).rowCount == 1 else {
                        throw DomainError.notFound(entity: "user", id: userId)
                    }
                    guard try db.query("SELECT 1 FROM products WHERE id = $1", [productId]).rowCount == 1 else {
                        throw DomainError.notFound(entity: "product", id: productId)
                    }
                    try db.query(
                        "INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                        [userId, productId])
                    let row = try db.query(
                        "SELECT id, version FROM cart_items WHERE user_id = $1 AND product_id = $2", [userId, productId])
                    let (id, version) = (row.int(0, 0)!, row.int(0, 1)!)
                    try client.think()
                    let updated: PostgresResult
                    if strategy == .naive {
                        updated = try db.query("UPDATE cart_items SET quantity = $1 WHERE id = $2", [quantity, id])
                    } else {
                        updated = try db.query(
                            "UPDATE cart_items SET quantity = $1, version = version + 1 WHERE id = $2 AND version = $3",
                            [quantity, id, version])
                    }
                    guard updated.affectedRows == 1 else { throw OptimisticConflict(entity: "cart_item", id: id) }
                    return CartUpdate(userId: userId, productId: productId, quantity: quantity)
                }
            }
        } catch let conflict as OptimisticConflict {
            throw DomainError.conflict(entity: conflict.entity, id: conflict.id)
        }
    }
}
