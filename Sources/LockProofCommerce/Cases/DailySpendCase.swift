import LockProofPostgres

/// Case 6: spend under a daily limit (write skew). See `DailySpend`.
public enum DailySpendCase: CaseDescriptor {
    public typealias Strategy = DailySpendStrategy
    public static let caseName = CaseName.dailySpend
    public static let operations: [OperationName] = [.spend]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns = [DailySpend.lockKeyPattern]
    public static let checkers: [CheckerKind] = [.dailyLimit]

    public static func traits(_ strategy: Strategy) -> StrategyTraits {
        switch strategy {
        // The Redis lock, and the user's row lock when the breaker is open.
        case .seed: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: false)
        case .pessimistic: return StrategyTraits(locks: [.row], retries: false, negativeControl: false)
        case .serializable: return StrategyTraits(locks: [], retries: true, negativeControl: false)
        // An advisory lock: no Redis or row lock the metrics measure.
        case .advisory: return StrategyTraits(locks: [], retries: false, negativeControl: false)
        case .repeatableReadNoLock: return StrategyTraits(locks: [], retries: false, negativeControl: true)
        case .limitReachedRefused, .recordedTwice, .notSaved, .limitConsumed:
            return StrategyTraits(locks: [.row], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> { [.amount] }

    public static let storage = CaseStorage(
        tables: DailySpend.tables, statements: DailySpend.schemaStatements,
        seedKeys: [SeedKey(name: "daily_limit", range: 0...1_000_000_000, defaultValue: 10_000, help: "every user's daily spending limit")]
    ) { values, users, db in
        try SeedData(db: db).spendingLimits(users: users, dailyLimit: values["daily_limit"] ?? 10_000)
    }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        Invocation(operation: .spend, strategy: "", arguments: ["user": source.user(), "amount": source.amount])
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let spent = try DailySpend(client: client, strategy: strategy)
            .spend(userId: invocation.arguments["user"]!, amount: invocation.arguments["amount"]!)
        return ["spent_today": spent.spentToday, "attempts": spent.attempts]
    }

    /// Not in the benchmark's matrix: the ceiling replays one attempt of the traced statements in
    /// pgbench, which does not retry a 40001, so the serializable cells could not be measured
    /// against it; and the bench's figures stay those of the five cases (issue 16).
    public static let benchmark: BenchmarkProfile? = nil
}
