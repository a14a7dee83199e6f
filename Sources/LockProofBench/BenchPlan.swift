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
    /// Length of one measured run, in whole seconds (pgbench's `-T` takes whole seconds): every
    /// client runs operations until then and finishes the one in flight, as pgbench's clients do,
    /// so both sides measure the same thing (from the start barrier, connections already made, to
    /// the last client's end). A fixed count per client would end each run with its slowest
    /// client instead, and tiny runs would measure their fixed costs.
    public var cellSeconds: Int
    /// Repetitions that also measure the ceiling (the first ones).
    public var ceilingRepetitions: Int
    /// Length of the claim experiments that run for a time (deadlocks).
    public var seconds: Double
    /// Pre-made orders per second of a cell, for payments (at most a few thousand a second here)
    /// and order-state changes (several times faster): every operation takes an order of its own,
    /// so a run must not do more (a cell that would is an error, never a silent wrap-around).
    public var paymentOrdersPerSecond = 8_000
    public var stateOrdersPerSecond = 20_000
    /// Users a coupon cell seeds (each takes one coupon, one per operation).
    public var couponUsers = 20_000
    /// Orders a cell of `caseName` seeds.
    public func orders(_ caseName: CaseName) -> Int {
        (caseName.descriptor.benchmark?.pool == .stateOrders ? stateOrdersPerSecond : paymentOrdersPerSecond) * cellSeconds
    }
    /// The pool of rows a cell of `caseName` walks one per operation (nil: it walks none).
    public func poolSize(_ caseName: CaseName) -> Int? {
        guard let pool = caseName.descriptor.benchmark?.pool else { return nil }
        switch pool {
        case .paymentOrders: return paymentOrdersPerSecond * cellSeconds
        case .stateOrders: return stateOrdersPerSecond * cellSeconds
        case .couponUsers: return couponUsers
        }
    }
    /// Grows the pool of `caseName` to hold at least `rows` (a cell outran it: the machine is
    /// faster than the preset's figures assumed).
    public mutating func grow(_ caseName: CaseName, toHold rows: Int) {
        guard let pool = caseName.descriptor.benchmark?.pool else { return }
        let perSecond = (rows + cellSeconds - 1) / max(1, cellSeconds)
        switch pool {
        case .paymentOrders: paymentOrdersPerSecond = max(paymentOrdersPerSecond, perSecond)
        case .stateOrders: stateOrdersPerSecond = max(stateOrdersPerSecond, perSecond)
        case .couponUsers: couponUsers = max(couponUsers, rows)
        }
    }
    /// Measure the deliberately broken strategies too (the claims and `verify` catch them anyway).
    public var negativeControls: Bool
    /// Only these strategies (`--strategies`); nil: every strategy of each case. A deliberately
    /// broken strategy named here is measured even when the preset leaves negative controls out.
    public var strategies: [String]? = nil
    /// The options that changed the preset (`--clients 1,8`, …), said in every report's header.
    public var overrides: [String] = []
    /// "quick preset", or "full preset with --cases charge-balance --clients 1,8".
    public var title: String {
        "\(name) preset" + (overrides.isEmpty ? "" : " with " + overrides.joined(separator: " "))
    }
    /// Whether the matrix measures `strategy` of `caseName`.
    public func measures(_ caseName: CaseName, _ strategy: String) -> Bool {
        if let strategies { return strategies.contains(strategy) }
        return negativeControls || !BenchCase.isNegativeControl(caseName, strategy)
    }
    /// Cells whose clients share a connection pool: (clients, sessions) for each pooled strategy.
    public var pooledClients: [Int]
    public var poolSessions: Int

    public static let quick = BenchPreset(
        name: "quick", clientCounts: [1, 64], repetitions: 2, cellSeconds: 1, ceilingRepetitions: 1, seconds: 0.5,
        negativeControls: false, pooledClients: [64, 128], poolSessions: 16)
    public static let full = BenchPreset(
        name: "full", clientCounts: [1, 4, 16, 64, 128], repetitions: 3, cellSeconds: 3, ceilingRepetitions: 3,
        seconds: 3, negativeControls: true, pooledClients: [64, 128], poolSessions: 16)

    public static func named(_ name: String) -> BenchPreset? {
        switch name {
        case "quick": return .quick
        case "full": return .full
        default: return nil
        }
    }
}

/// One point of the matrix: a case, a strategy, a number of clients, a contention, and the
/// connection pool the clients share (nil: every client owns its session and Redis connection).
public struct BenchCellKey: Sendable, Hashable, Codable, Comparable {
    public let caseName: CaseName
    public let strategy: String
    public let clients: Int
    public let contention: Contention
    /// Sessions (and Redis connections) of the pool all clients borrow from.
    public let pool: Int?

    public init(caseName: CaseName, strategy: String, clients: Int, contention: Contention, pool: Int? = nil) {
        self.caseName = caseName
        self.strategy = strategy
        self.clients = clients
        self.contention = contention
        self.pool = pool
    }

    public var id: String {
        "\(caseName.rawValue)/\(strategy)/\(contention.rawValue)/c\(clients)" + (pool.map { "/pool\($0)" } ?? "")
    }

    /// Clients pgbench runs for the ceiling: a pool of N lets N transactions be in flight at the
    /// database, so the most it can do is pgbench with N clients.
    public var ceilingClients: Int { min(clients, pool ?? clients) }

    public static func < (lhs: BenchCellKey, rhs: BenchCellKey) -> Bool {
        (lhs.caseName.rawValue, lhs.strategy, lhs.contention.rawValue, lhs.pool ?? 0, lhs.clients)
            < (rhs.caseName.rawValue, rhs.strategy, rhs.contention.rawValue, rhs.pool ?? 0, rhs.clients)
    }

    enum CodingKeys: String, CodingKey {
        case caseName = "case", strategy, clients, contention, pool
    }
}

/// What the benchmark runs for one case: its strategies, the contentions that make sense for it,
/// and the scenario (seed and workload) of a cell. Values are distinctive (an odd balance, a price
/// of 13, a quantity of 2) so that a traced statement's parameters map back to their sources
/// without ambiguity when the pgbench script is derived.
public struct BenchCase: Sendable {
    public let caseName: CaseName
    public let contentions: [Contention]

    /// Every strategy but the single-bound controls (wrong even alone: nothing to measure).
    public var strategies: [String] { caseName.strategyNames.filter { caseName.traits($0)?.singleBoundControl != true } }

    /// The cases the benchmark covers, from the descriptors' `benchmark` profiles. Order-state
    /// transitions happen once per order, so its only steady workload gives every operation an
    /// order of its own (spread); coupons have one row.
    public static let all: [BenchCase] = CaseName.allCases.compactMap { caseName in
        caseName.descriptor.benchmark.map { profile in
            BenchCase(caseName: caseName, contentions: (profile.hot ? [.hot] : []) + (profile.spread ? [.spread] : []))
        }
    }

    /// Strategies that are deliberately broken (negative controls): measured and marked, never ranked.
    public static func isNegativeControl(_ caseName: CaseName, _ strategy: String) -> Bool {
        caseName.traits(strategy)?.negativeControl ?? false
    }

    /// Strategies that take a Redis lock (their ceiling leaves out the Redis round trips).
    public static func usesRedisLock(_ caseName: CaseName, _ strategy: String) -> Bool {
        caseName.traits(strategy)?.usesRedisLock ?? false
    }

    /// Strategies measured with a shared connection pool too: a payment's and a charge's seed
    /// (a Redis lock held while the client waits for a session) against their pessimistic
    /// strategy (row locks only, nothing held while waiting).
    public var pooledStrategies: [String] { caseName.descriptor.benchmark?.pooledStrategies ?? [] }

    /// The scenario of one cell, as scenario-file YAML (validated by the same parser as `verify`).
    /// `pick` overrides the contention's pick mode (tracing uses `random` for distinctive ids).
    /// The run lasts `iterations` per client when given, else `seconds`, else the preset's cell length.
    public func scenarioYAML(
        strategy: String, clients: Int, contention: Contention, seconds: Double? = nil, iterations: Int? = nil,
        preset: BenchPreset, pick: PickMode? = nil, randomSeed: Int = 11, pool: Int? = nil
    ) -> String {
        let hot = contention == .hot
        let pools = BenchmarkPools(orders: preset.orders(caseName), couponUsers: preset.couponUsers)
        guard let cell = caseName.descriptor.benchmark?.cell(hot, pools, iterations == 1) else {
            preconditionFailure("\(caseName.rawValue) has no benchmark profile")
        }
        var workload = cell.workload
        let seed = cell.seed
        let pickMode = cell.pick.flatMap(PickMode.init(rawValue:)) ?? (hot ? .same : .random)
        if let pool { workload.append("connections: \(pool)") }
        let length = iterations.map { "iterations: \($0)" }
            ?? "duration: \(Int(((seconds ?? Double(preset.cellSeconds)) * 1000).rounded()))ms"
        return """
            name: bench-\(caseName.rawValue)-\(strategy)-\(contention.rawValue)-c\(clients)\(pool.map { "-pool\($0)" } ?? "")
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
        strategy: String, clients: Int, contention: Contention, seconds: Double? = nil, iterations: Int? = nil,
        preset: BenchPreset, pick: PickMode? = nil, randomSeed: Int = 11, pool: Int? = nil
    ) throws -> Scenario {
        try ScenarioParser.parse(
            scenarioYAML(
                strategy: strategy, clients: clients, contention: contention, seconds: seconds, iterations: iterations,
                preset: preset, pick: pick, randomSeed: randomSeed, pool: pool),
            file: "<bench \(caseName.rawValue)/\(strategy)>")
    }

    /// The scenario of a cell of the matrix.
    public func scenario(_ cell: BenchCellKey, preset: BenchPreset) throws -> Scenario {
        try scenario(
            strategy: cell.strategy, clients: cell.clients, contention: cell.contention, preset: preset, pool: cell.pool)
    }
}

/// The cells of a preset, in a fixed order: the matrix, then the pooled cells (spread only: a
/// pool's queue, not one hot row, is what they measure).
public func benchCells(_ preset: BenchPreset, cases: [BenchCase] = BenchCase.all) -> [BenchCellKey] {
    var cells: [BenchCellKey] = []
    for benchCase in cases {
        for strategy in benchCase.strategies where preset.measures(benchCase.caseName, strategy) {
            for contention in benchCase.contentions {
                for clients in preset.clientCounts {
                    cells.append(
                        BenchCellKey(caseName: benchCase.caseName, strategy: strategy, clients: clients, contention: contention))
                }
            }
        }
    }
    for benchCase in cases {
        for strategy in benchCase.pooledStrategies where preset.measures(benchCase.caseName, strategy) {
            for clients in preset.pooledClients where clients > preset.poolSessions {
                cells.append(
                    BenchCellKey(
                        caseName: benchCase.caseName, strategy: strategy, clients: clients, contention: .spread,
                        pool: preset.poolSessions))
            }
        }
    }
    return cells
}

/// The claim experiments (workloads beyond the matrix) that the selected cases call for: a run
/// limited to charges runs no coupon, oversell or deadlock experiment.
public func claimExperimentNames(cases: [BenchCase], repetitions: Int) -> [String] {
    let selected = Set(cases.map(\.caseName))
    var names: [String] = []
    if selected.contains(.issueCoupon) {
        names.append("coupon-duplicates")
        names += (1...max(3, repetitions)).map { "coupon-200-for-100#\($0)" }
    }
    if selected.contains(.createOrder) { names += ["oversell", "deadlocks-seed", "deadlocks-unsorted"] }
    if selected.contains(.chargeBalance) { names.append("lost-update") }
    if selected.contains(.orderState) { names.append("order-state-race") }
    return names
}
