import LockProofCommerce
import LockProofPostgres

/// One kind of broken invariant found by a checker, counted, with its first example.
public struct Violation: Sendable, Codable, Equatable {
    public let name: String
    public let count: Int
    public let firstExample: String

    enum CodingKeys: String, CodingKey {
        case name, count
        case firstExample = "first_example"
    }
}

/// What one checker concluded.
public struct CheckResult: Sendable, Codable, Equatable {
    public let name: String
    public let passed: Bool
    public let violations: [Violation]
    /// What was checked, in one line (e.g. "16 users, 1280 charges").
    public let summary: String
}

/// Everything a checker may look at: the history, the initial state, and the database at the end.
public struct CheckContext {
    public let scenario: Scenario
    public let history: [HistoryEntry]
    public let initial: InitialState
    public let db: PostgresConnection
    public let statistics: RunStatistics

    public init(
        scenario: Scenario, history: [HistoryEntry], initial: InitialState, db: PostgresConnection, statistics: RunStatistics
    ) {
        self.scenario = scenario
        self.history = history
        self.initial = initial
        self.db = db
        self.statistics = statistics
    }
}

/// A checker over a recorded history and the final state (Jepsen's vocabulary).
public protocol Checker {
    var name: String { get }
    func check(_ context: CheckContext) throws -> CheckResult
}

/// Collects violations by name, keeping the first example of each.
struct ViolationTally {
    private var counts: [String: Int] = [:]
    private var examples: [String: String] = [:]
    private var order: [String] = []

    mutating func add(_ name: String, _ example: @autoclosure () -> String) {
        if counts[name] == nil {
            order.append(name)
            examples[name] = example()
        }
        counts[name, default: 0] += 1
    }

    func result(_ checker: String, summary: String) -> CheckResult {
        let violations = order.map { Violation(name: $0, count: counts[$0]!, firstExample: examples[$0]!) }
        return CheckResult(name: checker, passed: violations.isEmpty, violations: violations, summary: summary)
    }
}

/// The checkers that apply to a scenario: those of every operation it runs, each once, all on
/// the combined history (charges and payments of one user are judged together).
public func checkers(for scenario: Scenario) -> [any Checker] {
    var list: [any Checker] = []
    if scenario.runs("charge") || scenario.runs("pay") { list.append(MoneyConservationChecker()) }
    if scenario.runs("pay") { list += [StockConservationChecker(), CompensationChecker()] }
    if scenario.runs("issue") { list.append(CouponChecker()) }
    if scenario.runs("create") { list.append(OrderCreationChecker()) }
    if scenario.runs("complete") || scenario.runs("cancel") { list.append(TransitionChecker()) }
    if scenario.runs("add") { list.append(CartChecker()) }
    return list + [DeadlockChecker()]
}

extension PostgresConnection {
    /// `SELECT key, value …` as a dictionary.
    func pairs(_ sql: String, _ parameters: [any PostgresBindable] = []) throws -> [Int: Int] {
        let rows = try query(sql, parameters)
        var result: [Int: Int] = [:]
        for row in 0..<rows.rowCount { result[rows.int(row, 0)!] = rows.int(row, 1) ?? 0 }
        return result
    }
}

extension Array where Element == HistoryEntry {
    func with(_ operation: String, _ outcome: HistoryOutcome) -> [HistoryEntry] {
        filter { $0.operation == operation && $0.outcome == outcome }
    }
}
