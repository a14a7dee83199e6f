extension CartQuantity {
    /// Sets a cart line's quantity (0 empties it; the line stays): the read-then-write of case 5
    /// under the same strategy as `add`, so that lowering a quantity is expressible. The seed
    /// strategy checks the version and does not retry: a lost race is `DomainError.conflict`.
    public func set(userId: Int, productId: Int, quantity: Int) throws -> CartUpdate {
        guard quantity >= 0 else { throw DomainError.invalidQuantity(quantity) }
        return try writeLine(userId: userId, productId: productId) { _ in quantity }
    }
}
