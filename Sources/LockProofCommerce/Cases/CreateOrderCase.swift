/// Case 4: create an order (stock checked under product locks, deducted at payment).
public enum CreateOrderCase: CaseDescriptor {
    public typealias Strategy = CreateOrderStrategy
    public static let caseName = CaseName.createOrder
    public static let operations: [OperationName] = [.create]
    /// `workload.pay_after_create` pays each created order (with the seed's payment strategy).
    public static let followUps: [OperationName] = [.pay]
    public static let lockKeyPatterns = ["order:create:user:*"]
    public static let checkers: [CheckerKind] = [.orderCreation]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: false)
        case .unsorted: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: true)
        case .noLock: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .stockUnchecked, .firstItemOnly, .createdTwice, .rolledBack:
            return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> { [.items, .itemOrder, .quantity, .products, .price, .stock] }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        let user = source.user()
        let items = source.items()
        return Invocation(operation: .create, strategy: "", arguments: ["user": user], items: items)
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let order = try CreateOrder(client: client, strategy: strategy)
            .create(userId: invocation.arguments["user"]!, items: invocation.items ?? [])
        return ["order": order.orderId, "total": order.totalAmount]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(hot: true, spread: true, pooledStrategies: []) { hot, _, _ in
        (["users: \(hot ? 1 : 10_000)", "products: \(hot ? 2 : 1_000)", "price: 13", "stock: 999999929"],
         ["items: 2", "quantity: 3"], nil)
    }
}
