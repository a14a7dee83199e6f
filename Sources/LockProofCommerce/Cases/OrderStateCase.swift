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

extension StateChangeStrategy {
    /// Shared with `CartQuantityCase` (CartQuantityCase.swift), the other case of these strategies.
    /// Optimistic version checks only: no lock; `optimistic-retry` retries; `naive` is the control.
    static func traits(_ strategy: StateChangeStrategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .optimisticRetry: return StrategyTraits(locks: [], retries: true, negativeControl: false)
        case .naive: return StrategyTraits(locks: [], retries: false, negativeControl: true)
        // Each breaks one bound of one of the two cases (and acts as `seed` in the other).
        case .addedTwice, .statusNotSet, .stateRechecked, .repeatAcknowledged:
            return StrategyTraits(locks: [], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }
}
