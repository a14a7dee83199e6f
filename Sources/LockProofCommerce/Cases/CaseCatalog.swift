/// Every case and every operation. A new case adds its name here, its operations, and its
/// descriptor's arm in `descriptor`: the compiler then asks for each piece the descriptor lacks,
/// and for the scenario layer's checker of each new `CheckerKind`.

/// The cases a workload can run. Case 5 (cart / order state change) has two descriptors.
public enum CaseName: String, Sendable, CaseIterable, Codable {
    case chargeBalance = "charge-balance"
    case processPayment = "process-payment"
    case issueCoupon = "issue-coupon"
    case createOrder = "create-order"
    case orderState = "order-state"
    case cartQuantity = "cart-quantity"
    case dailySpend = "daily-spend"

    /// The case's description.
    public var descriptor: any CaseDescriptor.Type {
        switch self {
        case .chargeBalance: return ChargeBalanceCase.self
        case .processPayment: return ProcessPaymentCase.self
        case .issueCoupon: return IssueCouponCase.self
        case .createOrder: return CreateOrderCase.self
        case .orderState: return OrderStateCase.self
        case .cartQuantity: return CartQuantityCase.self
        case .dailySpend: return DailySpendCase.self
        }
    }

    /// The strategy names this case accepts (its strategy enum's raw values, the seed's first).
    public var strategyNames: [String] { descriptor.strategyNames }
    /// The operations this case offers, the default one first.
    public var operations: [OperationName] { descriptor.operations }
    /// What `strategy` takes and does; nil for a name the case does not have.
    public func traits(_ strategy: String) -> StrategyTraits? { descriptor.traits(named: strategy) }
}

/// The operations of every case, as scenario files (`workload.mix`) and histories name them.
public enum OperationName: String, Sendable, CaseIterable, Codable, Comparable {
    case charge, pay, issue, create, complete, cancel, add, spend

    /// The case the operation belongs to.
    public var caseName: CaseName {
        switch self {
        case .charge: return .chargeBalance
        case .pay: return .processPayment
        case .issue: return .issueCoupon
        case .create: return .createOrder
        case .complete, .cancel: return .orderState
        case .add: return .cartQuantity
        case .spend: return .dailySpend
        }
    }

    /// The scenario keys it reads.
    public var reads: Set<ScenarioKey> { caseName.descriptor.reads(self) }

    public static func < (lhs: OperationName, rhs: OperationName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The checkers a case may call for; the scenario layer makes one of each (`Checkers/`).
public enum CheckerKind: String, Sendable, CaseIterable {
    case moneyConservation = "money-conservation"
    case stockConservation = "stock-conservation"
    case compensation
    case coupon
    case orderCreation = "order-creation"
    case transition
    case cart
    case dailyLimit = "daily-limit"
}

/// The Redis keys of every case's locks, as `SCAN` patterns, each once in case order.
public var caseLockKeyPatterns: [String] {
    var patterns: [String] = []
    for caseName in CaseName.allCases {
        for pattern in caseName.descriptor.lockKeyPatterns where !patterns.contains(pattern) { patterns.append(pattern) }
    }
    return patterns
}

extension CaseDescriptor {
    static var strategyNames: [String] { Strategy.allCases.map(\.rawValue) }

    static func traits(named name: String) -> StrategyTraits? { Strategy(rawValue: name).map(traits) }

    /// Performs `invocation` with its strategy; a strategy name the case does not have is a
    /// programming error (the parser refused it).
    static func perform(_ invocation: Invocation, on client: CommerceClient) throws -> [String: Int] {
        guard let strategy = Strategy(rawValue: invocation.strategy) else {
            preconditionFailure("validated scenario has strategy \(invocation.strategy) for \(caseName.rawValue)")
        }
        return try perform(invocation, strategy, on: client)
    }

    static func draw(_ operation: OperationName, strategy: String, from source: inout some ArgumentSource) -> Invocation {
        arguments(operation, from: &source).with(strategy: strategy)
    }
}

extension OperationName {
    /// Draws this operation's arguments (see `CaseDescriptor.arguments`).
    public func draw(strategy: String, from source: inout some ArgumentSource) -> Invocation {
        caseName.descriptor.draw(self, strategy: strategy, from: &source)
    }
}

extension Invocation {
    /// Performs the invocation on the in-process core (`CaseDescriptor.perform`).
    public func perform(on client: CommerceClient) throws -> [String: Int] {
        try operation.caseName.descriptor.perform(self, on: client)
    }
}
