/// Case 1: charge a user's balance.
public enum ChargeBalanceCase: CaseDescriptor {
    public typealias Strategy = ChargeBalanceStrategy
    public static let caseName = CaseName.chargeBalance
    public static let operations: [OperationName] = [.charge]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns = ["balance:user:*"]
    public static let checkers: [CheckerKind] = [.moneyConservation]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [.redis], retries: true, negativeControl: false)
        case .optimisticRetry: return StrategyTraits(locks: [], retries: true, negativeControl: false)
        case .pessimistic: return StrategyTraits(locks: [.row], retries: false, negativeControl: false)
        case .atomic: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .naive: return StrategyTraits(locks: [], retries: false, negativeControl: true)
        case .redisLock: return StrategyTraits(locks: [.redis], retries: false, negativeControl: false)
        // The Redis lock, and the row lock when the breaker is open and there is no token.
        case .redisLockFenced: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: false)
        case .keyOutsideTransaction: return StrategyTraits(locks: [], retries: true, negativeControl: true)
        case .staleLockBroken: return StrategyTraits(locks: [.redis], retries: true, negativeControl: true, singleBoundControl: true)
        case .reappliedCharge, .feeSkimmed, .ledgerRecordsBalance, .ledgerRowsMerged, .ledgerRowSplit,
            .keyReferenceDropped, .keyNotClaimed:
            return StrategyTraits(locks: [.row], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> {
        [.amount, .idempotencyKeys, .idempotencyDuplicates, .balance]
    }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        let (user, key) = source.keyedUser()
        return Invocation(operation: .charge, strategy: "", arguments: ["user": user, "amount": source.amount], key: key)
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let charged = try ChargeBalance(client: client, strategy: strategy)
            .charge(userId: invocation.arguments["user"]!, amount: invocation.arguments["amount"]!, idempotencyKey: invocation.key)
        return ["balance": charged.balance, "applied": charged.applied ? 1 : 0, "attempts": charged.attempts]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(
        hot: true, spread: true, pooledStrategies: ["seed", "pessimistic"]
    ) { hot, _, _ in
        (["users: \(hot ? 1 : 10_000)", "balance: 999999937"], ["amount: 101"], nil)
    }
}
