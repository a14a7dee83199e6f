/// Case 2: pay a pending order (balance and stock deducted, the gateway asked after commit).
public enum ProcessPaymentCase: CaseDescriptor {
    public typealias Strategy = ProcessPaymentStrategy
    public static let caseName = CaseName.processPayment
    public static let operations: [OperationName] = [.pay]
    public static let followUps: [OperationName] = []
    public static let lockKeyPatterns = ["balance:user:*"]
    public static let checkers: [CheckerKind] = [.moneyConservation, .stockConservation, .compensation]
    public static let storage = CaseStorage.shared

    public static func traits(_ strategy: Strategy) -> StrategyTraits {
        switch strategy {
        case .seed: return StrategyTraits(locks: [.redis, .row], retries: false, negativeControl: false)
        case .pessimistic: return StrategyTraits(locks: [.row], retries: false, negativeControl: false)
        case .naive: return StrategyTraits(locks: [], retries: false, negativeControl: true)
        case .noStatusGuard: return StrategyTraits(locks: [.row], retries: false, negativeControl: true)
        case .stockPerLine, .stockTakenTwice, .stockLedgerPerLine, .paidWhenRefused,
            .compensationUnrecorded, .compensationReopensOrder, .gatewaySkipped, .receiptMisread,
            .refundQueued, .reconciliationDeferred, .compensationWrittenAhead:
            return StrategyTraits(locks: [.row], retries: false, negativeControl: true, singleBoundControl: true)
        }
    }

    public static func reads(_ operation: OperationName) -> Set<ScenarioKey> {
        [.gateway, .balance, .orders, .orderItems, .orderQuantity, .products, .price, .stock]
    }

    public static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation {
        Invocation(operation: .pay, strategy: "", arguments: ["order": source.order()])
    }

    public static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int] {
        let paid = try ProcessPayment(client: client, strategy: strategy).pay(orderId: invocation.arguments["order"]!)
        return ["amount": paid.amount, "user": paid.userId]
    }

    public static let benchmark: BenchmarkProfile? = BenchmarkProfile(
        hot: true, spread: true, pooledStrategies: ["seed", "pessimistic"], pool: .paymentOrders
    ) { hot, pools, _ in
        ([
            "users: \(hot ? 1 : 10_000)", "balance: 999999937", "products: \(hot ? 1 : 1_000)", "price: 13",
            "stock: 999999929", "orders: \(pools.orders)", "order_items: 1", "order_quantity: 2",
        ], [], "per-operation")
    }
}
