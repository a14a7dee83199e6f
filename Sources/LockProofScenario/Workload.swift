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
