/// Case 5a: move a pending order to COMPLETED or CANCELLED (racing transitions: one wins).
public enum OrderStateCase: CaseDescriptor {
    public typealias Strategy = StateChangeStrategy
    public static let caseName = CaseName.orderState
    public static let operations: [OperationName] = [.complete, .cancel]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns: [String] = []
    public static let checkers: [CheckerKind] = [.transition]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits { StateChangeStrategy.traits(strategy) }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> { [.orders, .orderItems, .orderQuantity, .products, .price] }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        Invocation(operation: operation, strategy: "", arguments: ["order": source.order()])
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let state = OrderState(client: client, strategy: strategy)
        let order = invocation.arguments["order"]!
        _ = try invocation.operation == .complete ? state.complete(orderId: order) : state.cancel(orderId: order)
        return [:]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(hot: false, spread: true, pooledStrategies: [], pool: .stateOrders) { _, pools, single in
        // A single traced operation runs `complete` alone (a mix needs operations for each).
        (["users: 1000", "orders: \(pools.orders)", "price: 13"], single ? [] : ["mix: {complete: 1, cancel: 1}"], "per-operation")
    }
}

/// Case 5b: add to a cart line (optimistic version check).
public enum CartQuantityCase: CaseDescriptor {
    public typealias Strategy = StateChangeStrategy
    public static let caseName = CaseName.cartQuantity
    public static let operations: [OperationName] = [.add]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns: [String] = []
    public static let checkers: [CheckerKind] = [.cart]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits { StateChangeStrategy.traits(strategy) }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> { [.quantity, .products, .cartQuantity] }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        let user = source.user()
        let product = source.product()
        return Invocation(operation: .add, strategy: "", arguments: ["user": user, "product": product, "quantity": source.quantity])
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let arguments = invocation.arguments
        let line = try CartQuantity(client: client, strategy: strategy)
            .add(userId: arguments["user"]!, productId: arguments["product"]!, quantity: arguments["quantity"]!)
        return ["quantity": line.quantity]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(hot: true, spread: true, pooledStrategies: []) { hot, _, _ in
        (["users: \(hot ? 1 : 10_000)", "products: \(hot ? 1 : 100)"], ["quantity: 3"], nil)
    }
}

extension StateChangeStrategy {
    /// Optimistic version checks only: no lock; `optimistic-retry` retries; `naive` is the control.
    static func traits(_ strategy: StateChangeStrategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .optimisticRetry: return StrategyTraits(locks: [], retries: true, negativeControl: false)
        case .naive, .addedTwice, .statusNotSet, .stateRechecked:
            return StrategyTraits(locks: [], retries: false, negativeControl: true)
        }
    }
}
