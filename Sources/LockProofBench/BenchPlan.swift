import LockProofCommerce
import LockProofScenario

/// How many rows the clients of a cell fight over.
public enum Contention: String, Sendable, Codable, CaseIterable {
    /// Every client works on the same row (one user, one product, one coupon).
    case hot
    /// Clients spread over thousands of rows: the realistic case.
    case spread
}

/// How far a benchmark goes: `quick` fits in 5 minutes on 2 cores, `full` covers the whole matrix.
public struct BenchPreset: Sendable, Equatable {
    public var name: String
    public var clientCounts: [Int]
    public var repetitions: Int
    /// Operations of one measured run, all clients together (each client runs its share, so a
    /// slow start of its thread on a loaded machine shortens no run). pgbench's ceiling runs the
    /// same number of transactions per client.
    public var operations: Int
    /// Repetitions that also measure the ceiling (the first ones).
    public var ceilingRepetitions: Int
    /// Length of the claim experiments that run for a time (deadlocks).
    public var seconds: Double
    /// Pre-made orders of the payment and order-state cells: at least the operations of a run.
    public var orders: Int
    /// Measure the deliberately broken strategies too (the claims and `verify` catch them anyway).
    public var negativeControls: Bool

    public static let quick = BenchPreset(
        name: "quick", clientCounts: [1, 64], repetitions: 2, operations: 256, ceilingRepetitions: 1, seconds: 0.5,
        orders: 3_000, negativeControls: false)
    public static let full = BenchPreset(
        name: "full", clientCounts: [1, 4, 16, 64, 128], repetitions: 3, operations: 3_000, ceilingRepetitions: 3,
        seconds: 3, orders: 60_000, negativeControls: true)

    /// Operations each client runs in a cell of `clients` clients.
    public func iterations(clients: Int) -> Int { max(2, (operations + clients - 1) / clients) }

    public static func named(_ name: String) -> BenchPreset? {
        switch name {
        case "quick": return .quick
        case "full": return .full
        default: return nil
        }
    }
}

/// One point of the matrix: a case, a strategy, a number of clients and a contention.
public struct BenchCellKey: Sendable, Hashable, Codable, Comparable {
    public let caseName: CaseName
    public let strategy: String
    public let clients: Int
    public let contention: Contention

    public var id: String { "\(caseName.rawValue)/\(strategy)/\(contention.rawValue)/c\(clients)" }

    public static func < (lhs: BenchCellKey, rhs: BenchCellKey) -> Bool {
        (lhs.caseName.rawValue, lhs.strategy, lhs.contention.rawValue, lhs.clients)
            < (rhs.caseName.rawValue, rhs.strategy, rhs.contention.rawValue, rhs.clients)
    }

    enum CodingKeys: String, CodingKey {
        case caseName = "case", strategy, clients, contention
    }
}

/// What the benchmark runs for one case: its strategies, the contentions that make sense for it,
/// and the scenario (seed and workload) of a cell. Values are distinctive (an odd balance, a price
/// of 13, a quantity of 2) so that a traced statement's parameters map back to their sources
/// without ambiguity when the pgbench script is derived.
public struct BenchCase: Sendable {
    public let caseName: CaseName
    public let contentions: [Contention]

    public var strategies: [String] { caseName.strategyNames }

    /// The cases the benchmark covers. Order-state transitions happen once per order, so its only
    /// steady workload gives every operation an order of its own (spread); coupons have one row.
    public static let all: [BenchCase] = [
        BenchCase(caseName: .chargeBalance, contentions: [.hot, .spread]),
        BenchCase(caseName: .processPayment, contentions: [.hot, .spread]),
        BenchCase(caseName: .issueCoupon, contentions: [.hot]),
        BenchCase(caseName: .createOrder, contentions: [.hot, .spread]),
        BenchCase(caseName: .orderState, contentions: [.spread]),
        BenchCase(caseName: .cartQuantity, contentions: [.hot, .spread]),
    ]

    /// Strategies that are deliberately broken (negative controls): measured and marked, never ranked.
    public static func isNegativeControl(_ caseName: CaseName, _ strategy: String) -> Bool {
        strategy == "naive" || (caseName == .createOrder && strategy == "unsorted")
            || (caseName == .chargeBalance && strategy == "key-outside-transaction")
    }

    /// Strategies that take a Redis lock (their ceiling leaves out the Redis round trips).
    public static func usesRedisLock(_ caseName: CaseName, _ strategy: String) -> Bool {
        strategy == "seed" && caseName != .orderState && caseName != .cartQuantity
            || (caseName == .createOrder && strategy == "unsorted")
            || (caseName == .chargeBalance && strategy.hasPrefix("redis-lock"))
    }

    /// The scenario of one cell, as scenario-file YAML (validated by the same parser as `verify`).
    /// `pick` overrides the contention's pick mode (tracing uses `random` for distinctive ids).
    public func scenarioYAML(
        strategy: String, clients: Int, contention: Contention, seconds: Double?, iterations: Int? = nil,
        preset: BenchPreset, pick: PickMode? = nil, randomSeed: Int = 11
    ) -> String {
        var seed: [String] = []
        var workload: [String] = []
        let hot = contention == .hot
        var pickMode: PickMode = hot ? .same : .random
        switch caseName {
        case .chargeBalance:
            seed = ["users: \(hot ? 1 : 10_000)", "balance: 999999937"]
            workload = ["amount: 101"]
        case .processPayment:
            seed = [
                "users: \(hot ? 1 : 10_000)", "balance: 999999937", "products: \(hot ? 1 : 1_000)", "price: 13",
                "stock: 999999929", "orders: \(max(preset.orders, preset.operations * 2))", "order_items: 1", "order_quantity: 2",
            ]
            pickMode = .perOperation
        case .issueCoupon:
            seed = ["users: 20000", "coupon_quantity: 10000000"]
            pickMode = .perOperation
        case .createOrder:
            seed = ["users: \(hot ? 1 : 10_000)", "products: \(hot ? 2 : 1_000)", "price: 13", "stock: 999999929"]
            workload = ["items: 2", "quantity: 3"]
        case .orderState:
            seed = ["users: 1000", "orders: \(max(preset.orders, preset.operations * 2))", "price: 13"]
            // A single traced operation runs `complete` alone (a mix needs operations for each).
            workload = iterations == 1 ? [] : ["mix: {complete: 1, cancel: 1}"]
            pickMode = .perOperation
        case .cartQuantity:
            seed = ["users: \(hot ? 1 : 10_000)", "products: \(hot ? 1 : 100)"]
            workload = ["quantity: 3"]
        }
        let length = iterations.map { "iterations: \($0)" }
            ?? seconds.map { "duration: \(Int($0 * 1000))ms" } ?? "iterations: \(preset.iterations(clients: clients))"
        return """
            name: bench-\(caseName.rawValue)-\(strategy)-\(contention.rawValue)-c\(clients)
            description: benchmark cell
            case: \(caseName.rawValue)
            strategy: \(strategy)
            seed:
            \(seed.map { "  " + $0 }.joined(separator: "\n"))
            workload:
              virtual_users: \(clients)
              \(length)
              start: barrier
              pick: \((pick ?? pickMode).rawValue)
              random_seed: \(randomSeed)
              timeout: 120s
            \(workload.map { "  " + $0 }.joined(separator: "\n"))
            expect: pass

            """
    }

    public func scenario(
        strategy: String, clients: Int, contention: Contention, seconds: Double?, iterations: Int? = nil,
        preset: BenchPreset, pick: PickMode? = nil, randomSeed: Int = 11
    ) throws -> Scenario {
        try ScenarioParser.parse(
            scenarioYAML(
                strategy: strategy, clients: clients, contention: contention, seconds: seconds, iterations: iterations,
                preset: preset, pick: pick, randomSeed: randomSeed),
            file: "<bench \(caseName.rawValue)/\(strategy)>")
    }
}

/// The cells of a preset, in a fixed order.
public func benchCells(_ preset: BenchPreset, cases: [BenchCase] = BenchCase.all) -> [BenchCellKey] {
    var cells: [BenchCellKey] = []
    for benchCase in cases {
        for strategy in benchCase.strategies
        where preset.negativeControls || !BenchCase.isNegativeControl(benchCase.caseName, strategy) {
            for contention in benchCase.contentions {
                for clients in preset.clientCounts {
                    cells.append(
                        BenchCellKey(caseName: benchCase.caseName, strategy: strategy, clients: clients, contention: contention))
                }
            }
        }
    }
    return cells
}
