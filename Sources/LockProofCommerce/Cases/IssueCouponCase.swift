/// Case 3: issue a first-come-first-served coupon.
public enum IssueCouponCase: CaseDescriptor {
    public typealias Strategy = IssueCouponStrategy
    public static let caseName = CaseName.issueCoupon
    public static let operations: [OperationName] = [.issue]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns = ["coupon:issue:*"]
    public static let checkers: [CheckerKind] = [.coupon]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: false)
        case .pessimistic: return StrategyTraits(locks: [.row], retries: false, negativeControl: false)
        case .atomic: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .naive: return StrategyTraits(locks: [], retries: false, negativeControl: true)
        case .offByOne, .countedTwice, .nextInLine, .plusOneFriend:
            return StrategyTraits(locks: [.row], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> { [.couponQuantity] }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        Invocation(operation: .issue, strategy: "", arguments: ["user": source.user(), "coupon": source.coupon])
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let issued = try IssueCoupon(client: client, strategy: strategy)
            .issue(couponId: invocation.arguments["coupon"]!, userId: invocation.arguments["user"]!)
        return ["issued_quantity": issued.issuedQuantity]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(hot: true, spread: false, pooledStrategies: [], pool: .couponUsers) { _, pools, _ in
        (["users: \(pools.couponUsers)", "coupon_quantity: 10000000"], [], "per-operation")
    }
}
