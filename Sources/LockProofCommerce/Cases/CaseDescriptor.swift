import LockProofLocking
import LockProofPostgres

/// One case, described once: its operations, its strategies with their traits, its Redis lock
/// keys, the checkers that judge it, what its operations read from a scenario, how an operation's
/// arguments are drawn and how the in-process core performs it. The parser, the generator, the
/// in-process client, the runner, the statistics, the bench plan and the failover fault derive
/// from these. Every requirement is without a default, so a descriptor missing a piece does not
/// compile; `CaseName.descriptor` and `OperationName.caseName` are exhaustive switches, so a new
/// case is not complete until it has a descriptor and its operations belong to it.
public protocol CaseDescriptor {
    /// The case's strategies, the seed's first (its raw values are the scenario files' names).
    associatedtype Strategy: RawRepresentable, CaseIterable, Sendable where Strategy.RawValue == String

    static var caseName: CaseName { get }
    /// The operations the case offers (`workload.mix`), the default one first.
    static var operations: [OperationName] { get }
    /// Operations the case's runs may perform after one of its own (create-order pays what it
    /// created when `workload.pay_after_create`): they bring their case's checkers.
    static var followUps: [OperationName] { get }
    /// What each strategy takes and does.
    static func traits(_ strategy: Strategy) -> StrategyTraits
    /// The Redis keys its locks use, as `SCAN` patterns (cleared before a run, compared by the failover fault).
    static var lockKeyPatterns: [String] { get }
    /// The checkers that judge its runs.
    static var checkers: [CheckerKind] { get }
    /// Tables, seed keys and seed step of the case's own, beside the shared ones (`.shared`: none).
    static var storage: CaseStorage { get }
    /// The scenario keys `operation` reads: a key no operation of a scenario reads is refused.
    static func reads(_ operation: OperationName) -> Set<ScenarioKey>
    /// Draws the arguments of one `operation` from the run's seed and workload.
    static func arguments(_ operation: OperationName, from source: inout some ArgumentSource) -> Invocation
    /// Performs one invocation on the in-process core; returns what an `ok` returned.
    static func perform(_ invocation: Invocation, _ strategy: Strategy, on client: CommerceClient) throws -> [String: Int]
    /// How the benchmark measures it (nil: it is not in the matrix).
    static var benchmark: BenchmarkProfile? { get }
}

/// What a strategy takes and does.
public struct StrategyTraits: Sendable, Equatable {
    /// The lock kinds it takes (a threshold on a lock it never takes is refused).
    public let locks: Set<LockKind>
    /// It retries on conflict (`workload.retry` applies).
    public let retries: Bool
    /// Deliberately broken: a checker must catch it (measured and marked, never ranked).
    public let negativeControl: Bool
    /// A negative control wrong even without contention: it breaks one bound of its checker so
    /// that the bound's own scenario shows it is checked. Judged by scenarios, never benchmarked.
    public let singleBoundControl: Bool

    public init(locks: Set<LockKind>, retries: Bool, negativeControl: Bool, singleBoundControl: Bool = false) {
        self.locks = locks
        self.retries = retries
        self.negativeControl = negativeControl || singleBoundControl
        self.singleBoundControl = singleBoundControl
    }

    /// It takes the Redis lock (the benchmark's ceiling leaves out the Redis round trips).
    public var usesRedisLock: Bool { locks.contains(.redis) }
}

/// What a case keeps of its own beside the shared tables (users, products, coupons, orders, carts):
/// its tables and the statements creating them (`Schema` creates, checks and empties them with
/// LockProof's others), the `seed.NAME` keys it reads, and the step seeding its rows for the seeded
/// users (run after the shared seed, only in scenarios that run the case).
public struct CaseStorage: Sendable {
    public let tables: [String]
    public let statements: [String]
    public let seedKeys: [SeedKey]
    public let seed: @Sendable (_ values: [String: Int], _ users: [Int], _ db: PostgresConnection) throws -> Void

    public init(
        tables: [String], statements: [String], seedKeys: [SeedKey],
        seed: @escaping @Sendable (_ values: [String: Int], _ users: [Int], _ db: PostgresConnection) throws -> Void
    ) {
        self.tables = tables
        self.statements = statements
        self.seedKeys = seedKeys
        self.seed = seed
    }

    /// Nothing of its own: the case works on the shared tables and seed keys only.
    public static let shared = CaseStorage(tables: [], statements: [], seedKeys: []) { _, _, _ in }
}

/// A `seed.NAME` whole number a case reads: its range (refused outside it) and its default.
public struct SeedKey: Sendable, Equatable {
    public let name: String
    public let range: ClosedRange<Int>
    public let defaultValue: Int
    public let help: String

    public init(name: String, range: ClosedRange<Int>, defaultValue: Int, help: String) {
        self.name = name
        self.range = range
        self.defaultValue = defaultValue
        self.help = help
    }
}

/// A scenario key an operation reads (`workload.amount`, `seed.orders`, …): a key that no
/// operation of a scenario reads is refused.
public enum ScenarioKey: String, Sendable, CaseIterable {
    case amount, items, itemOrder = "item_order", quantity, gateway
    case idempotencyKeys = "idempotency_keys", idempotencyDuplicates = "idempotency_duplicates"
    case balance, couponQuantity = "coupon_quantity", orders, orderItems = "order_items"
    case orderQuantity = "order_quantity", products, price, stock, cartQuantity = "cart_quantity"

    /// The section of a scenario file the key is written in.
    public var section: String {
        switch self {
        case .amount, .items, .itemOrder, .quantity, .gateway, .idempotencyKeys, .idempotencyDuplicates: return "workload"
        case .balance, .couponQuantity, .orders, .orderItems, .orderQuantity, .products, .price, .stock, .cartQuantity: return "seed"
        }
    }
}

/// One operation to perform, as the generator drew it: what a client (in-process or over HTTP)
/// needs and what the history records. No connection, pool or fault hook in it.
public struct Invocation: Sendable, Equatable {
    public let operation: OperationName
    /// The strategy of the operation, as written in the scenario (a descriptor's raw value).
    public let strategy: String
    /// Ids and amounts (`user`, `order`, `coupon`, `product`, `amount`, `quantity`).
    public let arguments: [String: Int]
    /// Order lines, for `create`.
    public let items: [OrderItemRequest]?
    /// The idempotency key, if any.
    public let key: String?

    public init(
        operation: OperationName, strategy: String, arguments: [String: Int], items: [OrderItemRequest]? = nil,
        key: String? = nil
    ) {
        self.operation = operation
        self.strategy = strategy
        self.arguments = arguments
        self.items = items
        self.key = key
    }

    /// The same invocation under another strategy.
    public func with(strategy: String) -> Invocation {
        Invocation(operation: operation, strategy: strategy, arguments: arguments, items: items, key: key)
    }
}

/// Where a descriptor draws an operation's arguments from: the run's seed and workload, as the
/// scenario's pick mode chooses (the generator implements it).
public protocol ArgumentSource {
    mutating func user() -> Int
    mutating func product() -> Int
    mutating func order() -> Int
    /// The seeded coupon.
    var coupon: Int { get }
    /// `workload.amount`, `workload.quantity`.
    var amount: Int { get }
    var quantity: Int { get }
    /// `workload.items` order lines from the picked product on, in `workload.item_order`.
    mutating func items() -> [OrderItemRequest]
    /// The user and idempotency key of a keyed operation: operations sharing a key share the user
    /// (`workload.idempotency_keys`, `idempotency_duplicates`); without keys, a picked user and nil.
    mutating func keyedUser() -> (user: Int, key: String?)
}

/// How the benchmark measures a case: the contentions that make sense for it and the seed and
/// workload of a cell, as scenario-file lines.
public struct BenchmarkProfile: Sendable {
    /// `hot` (every client on one row) and/or `spread`.
    public let hot: Bool
    public let spread: Bool
    /// Strategies measured with a shared connection pool too.
    public let pooledStrategies: [String]
    /// The rows a cell uses up one per operation (nil: it reuses its rows).
    public let pool: BenchmarkPoolKind?
    /// The cell's seed and workload lines and pick mode (nil: `same` when hot, else `random`).
    public let cell: @Sendable (_ hot: Bool, _ pools: BenchmarkPools, _ singleOperation: Bool) -> (seed: [String], workload: [String], pick: String?)

    public init(
        hot: Bool, spread: Bool, pooledStrategies: [String], pool: BenchmarkPoolKind? = nil,
        cell: @escaping @Sendable (_ hot: Bool, _ pools: BenchmarkPools, _ singleOperation: Bool) -> (seed: [String], workload: [String], pick: String?)
    ) {
        self.hot = hot
        self.spread = spread
        self.pooledStrategies = pooledStrategies
        self.pool = pool
        self.cell = cell
    }
}

/// Which pool of single-use rows a cell walks: a preset sizes each from its rate and grows it when
/// a cell outruns it (a payment or a state change needs an order of its own, an issue a user).
public enum BenchmarkPoolKind: Sendable, Equatable {
    case paymentOrders
    case stateOrders
    case couponUsers
}

/// The pools of rows a benchmark preset seeds (orders a cell walks, coupon users).
public struct BenchmarkPools: Sendable {
    public let orders: Int
    public let couponUsers: Int
    public init(orders: Int, couponUsers: Int) {
        self.orders = orders
        self.couponUsers = couponUsers
    }
}

extension CaseDescriptor {
    /// The strategy named `name`, or nil.
    static func strategy(named name: String) -> Strategy? { Strategy(rawValue: name) }
}
