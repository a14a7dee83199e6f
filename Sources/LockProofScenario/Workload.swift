import LockProofCommerce
import LockProofLocking

/// What the run started from: the ids the seed made and the values checkers compare against.
public struct InitialState: Sendable {
    public var users: [Int] = []
    public var products: [Int] = []
    public var couponId: Int?
    public var couponTotal = 0
    public var orders: [Int] = []
    public var balances: [Int: Int] = [:]
    public var stock: [Int: Int] = [:]
    public init() {}
}

/// Decides and performs one client's operations. One per virtual user, used on its thread only.
struct VirtualUser {
    let index: Int
    let scenario: Scenario
    let initial: InitialState
    let client: CommerceClient
    var generator: SeededGenerator
    /// Weighted operations, expanded: `mix: {complete: 1, cancel: 1}` → [complete, cancel].
    let cycle: [String]

    init(index: Int, scenario: Scenario, initial: InitialState, client: CommerceClient) {
        self.index = index
        self.scenario = scenario
        self.initial = initial
        self.client = client
        generator = SeededGenerator(seed: scenario.workload.randomSeed &* 0x9E37_79B9 &+ UInt64(index) &* 7_919)
        let mix = scenario.workload.mix.isEmpty
            ? [operations(of: scenario.caseName)[0]: 1] : scenario.workload.mix
        cycle = mix.keys.sorted().flatMap { Array(repeating: $0, count: mix[$0]!) }
    }

    private var virtualUsers: Int { scenario.workload.virtualUsers[0] }

    /// The slot of this client's `iteration`-th operation in the run: distinct across clients.
    private func slot(_ iteration: Int) -> Int { index + iteration * virtualUsers }

    private mutating func pick(_ pool: [Int], _ iteration: Int) -> Int {
        switch scenario.workload.pick {
        case .same: return pool[0]
        case .perClient: return pool[slot(iteration) % pool.count]
        case .random: return pool[Int.random(in: 0..<pool.count, using: &generator)]
        }
    }

    /// Runs the `iteration`-th operation; returns its history entries (create + pay makes two).
    mutating func perform(_ iteration: Int, clock: () -> Double, record: (HistoryEntry, OperationOutcome) -> Void) {
        let operation = cycle[slot(iteration) % cycle.count]
        let strategy = scenario.strategy
        switch operation {
        case "charge":
            let user = pick(initial.users, iteration)
            let amount = scenario.workload.amount
            let key = scenario.workload.idempotencyKeys ? "\(scenario.name)-\(index)-\(iteration)" : nil
            run(operation, iteration, ["user": user, "amount": amount], nil, clock, record) {
                let charged = try ChargeBalance(client: client, strategy: ChargeBalanceStrategy(rawValue: strategy)!)
                    .charge(userId: user, amount: amount, idempotencyKey: key)
                return ["balance": charged.balance, "applied": charged.applied ? 1 : 0, "attempts": charged.attempts]
            }
        case "pay":
            pay(order: pick(initial.orders, iteration), iteration, clock, record)
        case "issue":
            let user = pick(initial.users, iteration)
            let coupon = initial.couponId!
            run(operation, iteration, ["user": user, "coupon": coupon], nil, clock, record) {
                let issued = try IssueCoupon(client: client, strategy: IssueCouponStrategy(rawValue: strategy)!)
                    .issue(couponId: coupon, userId: user)
                return ["issued_quantity": issued.issuedQuantity]
            }
        case "create":
            let user = pick(initial.users, iteration)
            let base = initial.products.firstIndex(of: pick(initial.products, iteration))!
            var items = (0..<scenario.workload.items).map {
                OrderItemRequest(productId: initial.products[(base + $0) % initial.products.count], quantity: scenario.workload.quantity)
            }
            switch scenario.workload.itemOrder {
            case .sorted: break
            case .shuffled: items.shuffle(using: &generator)
            case .reversed: items.reverse()
            }
            var created: Int?
            run(operation, iteration, ["user": user], items, clock, record) {
                let order = try CreateOrder(client: client, strategy: CreateOrderStrategy(rawValue: strategy)!)
                    .create(userId: user, items: items)
                created = order.orderId
                return ["order": order.orderId, "total": order.totalAmount]
            }
            if scenario.workload.payAfterCreate, let created { pay(order: created, iteration, clock, record) }
        case "complete", "cancel":
            let order = pick(initial.orders, iteration)
            run(operation, iteration, ["order": order], nil, clock, record) {
                let state = OrderState(client: client, strategy: StateChangeStrategy(rawValue: strategy)!)
                _ = try operation == "complete" ? state.complete(orderId: order) : state.cancel(orderId: order)
                return [:]
            }
        case "add":
            let user = pick(initial.users, iteration)
            let product = pick(initial.products, iteration)
            let quantity = scenario.workload.quantity
            run(operation, iteration, ["user": user, "product": product, "quantity": quantity], nil, clock, record) {
                let line = try CartQuantity(client: client, strategy: StateChangeStrategy(rawValue: strategy)!)
                    .add(userId: user, productId: product, quantity: quantity)
                return ["quantity": line.quantity]
            }
        default:
            preconditionFailure("validated scenario has unknown operation \(operation)")
        }
    }

    private func pay(order: Int, _ iteration: Int, _ clock: () -> Double, _ record: (HistoryEntry, OperationOutcome) -> Void) {
        // Payments of create-order scenarios use the seed's payment strategy.
        let strategy = scenario.caseName == .processPayment
            ? ProcessPaymentStrategy(rawValue: scenario.strategy)! : .seed
        run("pay", iteration, ["order": order], nil, clock, record) {
            let paid = try ProcessPayment(client: client, strategy: strategy).pay(orderId: order)
            return ["amount": paid.amount, "user": paid.userId]
        }
    }

    private func run(
        _ operation: String, _ iteration: Int, _ arguments: [String: Int], _ items: [OrderItemRequest]?,
        _ clock: () -> Double, _ record: (HistoryEntry, OperationOutcome) -> Void, _ body: () throws -> [String: Int]
    ) {
        let start = clock()
        let outcome: OperationOutcome
        var reason: String?
        var result: [String: Int]?
        do {
            result = try body()
            outcome = .success
        } catch {
            outcome = OperationOutcome.classify(error)
            reason = reasonName(error)
            if outcome == .unknown { client.recoverConnections() }
        }
        let entry = HistoryEntry(
            client: index, index: iteration, operation: operation, arguments: arguments, items: items, start: start,
            end: clock(), outcome: outcome == .success ? .ok : outcome == .unknown ? .unknown : .fail, reason: reason,
            result: result)
        record(entry, outcome)
    }
}
