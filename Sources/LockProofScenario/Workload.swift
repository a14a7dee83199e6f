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
    /// Opening quantity of every (user, product) cart line; 0 = none made.
    public var cartQuantity = 0
    public init() {}
}

/// Decides and performs one client's operations. One per virtual user, used on its thread only.
struct VirtualUser {
    let index: Int
    let scenario: Scenario
    let initial: InitialState
    let client: CommerceClient
    var generator: SeededGenerator
    let plan: MixPlan
    /// The slot of the operation being performed (`pick: per-operation`).
    private var currentSlot = 0

    init(index: Int, scenario: Scenario, initial: InitialState, client: CommerceClient) {
        self.index = index
        self.scenario = scenario
        self.initial = initial
        self.client = client
        generator = SeededGenerator(seed: scenario.workload.randomSeed &* 0x9E37_79B9 &+ UInt64(index) &* 7_919)
        plan = MixPlan(scenario.operations)
    }

    private var virtualUsers: Int { scenario.workload.virtualUsers[0] }

    /// The slot of this client's `iteration`-th operation in the run: distinct across clients.
    private func slot(_ iteration: Int) -> Int { index + iteration * virtualUsers }

    /// `occurrence`: how many operations of the same name came before in slot order, so that
    /// under `per-client` the k-th complete and the k-th cancel meet on the same order.
    private mutating func pick(_ pool: [Int], _ occurrence: Int) -> Int {
        switch scenario.workload.pick {
        case .same: return pool[0]
        case .perClient: return pool[occurrence % pool.count]
        case .perOperation: return pool[currentSlot % pool.count]
        case .random: return pool[Int.random(in: 0..<pool.count, using: &generator)]
        }
    }

    /// Runs the `iteration`-th operation; returns its history entries (create + pay makes two).
    mutating func perform(_ iteration: Int, clock: () -> Double, record: (HistoryEntry, OperationOutcome) -> Void) {
        currentSlot = slot(iteration)
        let (spec, occurrence) = plan.assign(slot: currentSlot)
        let operation = spec.name
        let strategy = spec.strategy
        switch operation {
        case "charge":
            let amount = scenario.workload.amount
            // Duplicates of one key are consecutive charges in slot order (clients started
            // together), and a retry of a charge is for the same user: the user follows from the key.
            let duplicates = scenario.workload.idempotencyDuplicates
            let group = occurrence / duplicates
            let user = duplicates > 1 ? initial.users[group % initial.users.count] : pick(initial.users, occurrence)
            let key = scenario.workload.idempotencyKeys ? "\(scenario.name)-\(group)" : nil
            run(operation, iteration, ["user": user, "amount": amount], nil, clock, record, key: key) {
                let charged = try ChargeBalance(client: client, strategy: ChargeBalanceStrategy(rawValue: strategy)!)
                    .charge(userId: user, amount: amount, idempotencyKey: key)
                return ["balance": charged.balance, "applied": charged.applied ? 1 : 0, "attempts": charged.attempts]
            }
        case "pay":
            pay(order: pick(initial.orders, occurrence), ProcessPaymentStrategy(rawValue: strategy)!, iteration, clock, record)
        case "issue":
            let user = pick(initial.users, occurrence)
            let coupon = initial.couponId!
            run(operation, iteration, ["user": user, "coupon": coupon], nil, clock, record) {
                let issued = try IssueCoupon(client: client, strategy: IssueCouponStrategy(rawValue: strategy)!)
                    .issue(couponId: coupon, userId: user)
                return ["issued_quantity": issued.issuedQuantity]
            }
        case "create":
            let user = pick(initial.users, occurrence)
            let base = initial.products.firstIndex(of: pick(initial.products, occurrence))!
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
            // Payments of what was just created use the seed's payment strategy.
            if scenario.workload.payAfterCreate, let created { pay(order: created, .seed, iteration, clock, record) }
        case "complete", "cancel":
            let order = pick(initial.orders, occurrence)
            run(operation, iteration, ["order": order], nil, clock, record) {
                let state = OrderState(client: client, strategy: StateChangeStrategy(rawValue: strategy)!)
                _ = try operation == "complete" ? state.complete(orderId: order) : state.cancel(orderId: order)
                return [:]
            }
        case "add":
            let user = pick(initial.users, occurrence)
            let product = pick(initial.products, occurrence)
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

    private func pay(
        order: Int, _ strategy: ProcessPaymentStrategy, _ iteration: Int, _ clock: () -> Double,
        _ record: (HistoryEntry, OperationOutcome) -> Void
    ) {
        run("pay", iteration, ["order": order], nil, clock, record) {
            let paid = try ProcessPayment(client: client, strategy: strategy).pay(orderId: order)
            return ["amount": paid.amount, "user": paid.userId]
        }
    }

    private func run(
        _ operation: String, _ iteration: Int, _ arguments: [String: Int], _ items: [OrderItemRequest]?,
        _ clock: () -> Double, _ record: (HistoryEntry, OperationOutcome) -> Void, key: String? = nil,
        _ body: () throws -> [String: Int]
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
        // A pooled session borrowed for the whole operation goes back before the next one.
        client.releaseConnections()
        let entry = HistoryEntry(
            client: index, index: iteration, operation: operation, arguments: arguments, items: items, start: start,
            end: clock(), outcome: outcome == .success ? .ok : outcome == .unknown ? .unknown : .fail, reason: reason,
            result: result, key: key)
        record(entry, outcome)
    }
}


/// Assigns operations to slots by cumulative weights, never by an array expanded by weight (a
/// weight of a billion costs nothing). Slot s falls at position s mod W of the weight total W;
/// the operation owning that position runs, and it is that operation's
/// (s div W) × weight + (position − start)-th occurrence.
public struct MixPlan: Sendable {
    public let operations: [OperationSpec]
    /// Where each operation's positions start; `total` ends the last.
    let starts: [Int]
    public let total: Int

    public init(_ operations: [OperationSpec]) {
        precondition(!operations.isEmpty && operations.allSatisfy { $0.weight > 0 }, "a validated mix")
        self.operations = operations
        var starts: [Int] = []
        var sum = 0
        for operation in operations {
            starts.append(sum)
            sum += operation.weight
        }
        self.starts = starts
        total = sum
    }

    public func assign(slot: Int) -> (operation: OperationSpec, occurrence: Int) {
        let position = slot % total
        var index = operations.count - 1
        while starts[index] > position { index -= 1 }
        return (operations[index], (slot / total) * operations[index].weight + position - starts[index])
    }

    /// How many of the first `slots` slots run each operation.
    public func counts(slots: Int) -> [Int] {
        let rounds = slots / total, rest = slots % total
        return operations.indices.map { index in
            rounds * operations[index].weight + min(max(rest - starts[index], 0), operations[index].weight)
        }
    }
}
