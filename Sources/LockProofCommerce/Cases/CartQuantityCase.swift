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
