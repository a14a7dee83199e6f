import LockProofCommerce

/// Jepsen's generator for one client: yields the operations it performs, drawn from the
/// scenario's mix, seed and pick mode by each case's descriptor (`CaseDescriptor.arguments`). It
/// knows nothing of how an operation is performed (no connection, pool or fault hook): the same
/// invocations go to the in-process core or, next, to an HTTP client.
public struct OperationGenerator: ArgumentSource {
    public let client: Int
    let scenario: Scenario
    let initial: InitialState
    let plan: MixPlan
    var random: SeededGenerator
    /// The slot of the operation being drawn, and how many operations of the same name came
    /// before it in slot order (under `per-client` the k-th complete meets the k-th cancel).
    private var currentSlot = 0
    private var occurrence = 0

    public init(client: Int, scenario: Scenario, initial: InitialState) {
        self.client = client
        self.scenario = scenario
        self.initial = initial
        random = SeededGenerator(seed: scenario.workload.randomSeed &* 0x9E37_79B9 &+ UInt64(client) &* 7_919)
        plan = MixPlan(scenario.operations)
    }

    private var virtualUsers: Int { scenario.workload.virtualUsers[0] }

    /// The client's `iteration`-th operation. Slots are distinct across clients.
    public mutating func next(_ iteration: Int) -> Invocation {
        currentSlot = client + iteration * virtualUsers
        let (spec, occurrence) = plan.assign(slot: currentSlot)
        self.occurrence = occurrence
        return spec.operation.draw(strategy: spec.strategy, from: &self)
    }

    /// What follows a completed invocation, if anything: with `workload.pay_after_create`, the
    /// payment of the order a `create` just made, with the seed's payment strategy.
    public func followUp(after invocation: Invocation, completion: Completion) -> Invocation? {
        guard scenario.workload.payAfterCreate, invocation.operation.caseName.descriptor.followUps.contains(.pay),
            completion.outcome == .success, let order = completion.result?["order"]
        else { return nil }
        return Invocation(operation: .pay, strategy: Scenario.followUpStrategy, arguments: ["order": order])
    }

    private mutating func pick(_ pool: [Int]) -> Int {
        switch scenario.workload.pick {
        case .same: return pool[0]
        case .perClient: return pool[occurrence % pool.count]
        case .perOperation: return pool[currentSlot % pool.count]
        case .random: return pool[Int.random(in: 0..<pool.count, using: &random)]
        }
    }

    // ArgumentSource: what the descriptors draw from.

    public mutating func user() -> Int { pick(initial.users) }
    public mutating func product() -> Int { pick(initial.products) }
    public mutating func order() -> Int { pick(initial.orders) }
    public var coupon: Int { initial.couponId! }
    public var amount: Int { scenario.workload.amount }
    public var quantity: Int { scenario.workload.quantity }

    public mutating func items() -> [OrderItemRequest] {
        let base = initial.products.firstIndex(of: pick(initial.products))!
        var items = (0..<scenario.workload.items).map {
            OrderItemRequest(productId: initial.products[(base + $0) % initial.products.count], quantity: scenario.workload.quantity)
        }
        switch scenario.workload.itemOrder {
        case .sorted: break
        case .shuffled: items.shuffle(using: &random)
        case .reversed: items.reverse()
        }
        return items
    }

    /// Duplicates of one key are consecutive operations in slot order (clients started together),
    /// and a retry is for the same user: the user follows from the key.
    public mutating func keyedUser() -> (user: Int, key: String?) {
        let duplicates = scenario.workload.idempotencyDuplicates
        let group = occurrence / duplicates
        let user = duplicates > 1 ? initial.users[group % initial.users.count] : pick(initial.users)
        return (user, scenario.workload.idempotencyKeys ? "\(scenario.name)-\(group)" : nil)
    }
}
