import LockProofCommerce
import LockProofPostgres

/// One kind of broken invariant found by a checker, counted, with its first example.
public struct Violation: Sendable, Codable, Equatable {
    public let name: String
    public let count: Int
    public let firstExample: String
    /// The first example in figures, when the checker has them: what report.html explains.
    public let evidence: ViolationEvidence?

    public init(name: String, count: Int, firstExample: String, evidence: ViolationEvidence? = nil) {
        self.name = name
        self.count = count
        self.firstExample = firstExample
        self.evidence = evidence
    }

    enum CodingKeys: String, CodingKey {
        case name, count, evidence
        case firstExample = "first_example"
    }
}

/// A violation's first example as figures: the entity it is about (`{"user": 7}`, `{"user": 3,
/// "product": 5}`), the value the database holds and the value the acknowledged history requires
/// (for a bound: the bound crossed).
public struct ViolationEvidence: Sendable, Codable, Equatable {
    public let subject: [String: Int]
    public let observed: Int
    public let expected: Int

    public init(subject: [String: Int], observed: Int, expected: Int) {
        self.subject = subject
        self.observed = observed
        self.expected = expected
    }
}

/// What one checker concluded.
public struct CheckResult: Sendable, Codable, Equatable {
    public let name: String
    public let passed: Bool
    public let violations: [Violation]
    /// What was checked, in one line (e.g. "16 users, 1280 charges").
    public let summary: String
    /// Why the checker did not judge this run (a target that maps none of its input): reported as
    /// not checked, never as a pass. nil: it judged.
    public var notChecked: String? = nil

    enum CodingKeys: String, CodingKey {
        case name, passed, violations, summary
        case notChecked = "not_checked"
    }

    /// A checker that could not judge the run, and why.
    public static func notChecked(_ name: String, because reason: String) -> CheckResult {
        CheckResult(name: name, passed: true, violations: [], summary: "not checked: \(reason)", notChecked: reason)
    }
}

/// What a checker may look at once the run is over: the initial state, the database at the end,
/// the run's statistics. The history itself was fed to the checker entry by entry (`observe`).
public struct CheckContext {
    public let scenario: Scenario
    public let initial: InitialState
    /// LockProof's own database (in-process runs); checkers read the final state through `state`.
    public let db: PostgresConnection
    /// The final state the checkers judge: LockProof's tables, or a target's `state` queries.
    public let state: any FinalState
    public let statistics: RunStatistics
    /// When each fault was active, from the nemesis' entries of the history.
    public let faultWindows: [FaultWindow]

    public init(
        scenario: Scenario, initial: InitialState, db: PostgresConnection, statistics: RunStatistics, faultWindows: [FaultWindow] = [],
        state: (any FinalState)? = nil
    ) {
        self.scenario = scenario
        self.initial = initial
        self.db = db
        self.state = state ?? DatabaseState(db: db)
        self.statistics = statistics
        self.faultWindows = faultWindows
    }
}

/// A checker over a recorded history and the final state (Jepsen's vocabulary).
///
/// The history is never held in memory: the recorder hands every entry to `observe` as it is
/// recorded (serialised: never two calls at once), in the order the operations finished. A
/// checker keeps per-entity bounds and counts (per user, order, product, cart line), so its state
/// does not grow with the number of operations; `check` compares those bounds with the final state.
public protocol Checker: AnyObject {
    /// A fresh checker, holding no state yet.
    init()
    var name: String { get }
    /// The operations (`charge`, `pay`, …) this checker reads; other entries are not passed to it.
    var operations: Set<OperationName> { get }
    func observe(_ entry: HistoryEntry)
    /// A fault's start or end (the nemesis' entries of the same history); the windows are also
    /// in `CheckContext.faultWindows`.
    func observe(_ entry: NemesisEntry)
    func check(_ context: CheckContext) throws -> CheckResult
    /// Per-entity records held (dictionary entries, examples): tests show it does not grow with
    /// the number of operations on the same entities.
    var retainedRecords: Int { get }
}

extension Checker {
    /// Most checkers judge the final state whatever the faults were: they ignore the nemesis.
    public func observe(_ entry: NemesisEntry) {}
}

/// A checker that also reads the Redis lock holds of the history (`LockEntry`, process `lock`),
/// serialised with its other `observe` calls, in the order they were recorded.
public protocol LockHoldChecker: Checker {
    func observe(_ entry: LockEntry)
}

/// Collects violations by name, keeping the first example of each.
struct ViolationTally {
    private var counts: [String: Int] = [:]
    private var examples: [String: String] = [:]
    private var evidence: [String: ViolationEvidence] = [:]
    private var order: [String] = []

    mutating func add(
        _ name: String, count: Int = 1, _ example: @autoclosure () -> String, evidence: @autoclosure () -> ViolationEvidence? = nil
    ) {
        guard count > 0 else { return }
        if counts[name] == nil {
            order.append(name)
            examples[name] = example()
            self.evidence[name] = evidence()
        }
        counts[name, default: 0] += count
    }

    func result(_ checker: String, summary: String) -> CheckResult {
        let violations = order.map { Violation(name: $0, count: counts[$0]!, firstExample: examples[$0]!, evidence: evidence[$0]) }
        return CheckResult(name: checker, passed: violations.isEmpty, violations: violations, summary: summary)
    }
}

/// The checkers that apply to a scenario: those of every case it runs (its descriptors'
/// `checkers`), each once, in case order, all on the combined history (charges and payments of
/// one user are judged together), then the deadlock checker. Fresh: they hold the state of one run.
public func checkers(for scenario: Scenario) -> [any Checker] {
    var kinds: [CheckerKind] = []
    for caseName in CaseName.allCases where scenario.cases.contains(caseName) {
        for kind in caseName.descriptor.checkers where !kinds.contains(kind) { kinds.append(kind) }
    }
    // Mutual exclusion of the Redis lock is an invariant of every strategy that takes it.
    let followUps = scenario.workload.payAfterCreate ? scenario.followUps.map { ($0.caseName, Scenario.followUpStrategy) } : []
    let redisLock = (scenario.operations.map { ($0.caseName, $0.strategy) } + followUps).contains {
        $0.0.traits($0.1)?.usesRedisLock ?? false
    }
    return kinds.map { $0.makeChecker() } + (redisLock ? [LockExclusivityChecker()] : []) + [DeadlockChecker()]
}

extension CheckerKind {
    /// A fresh checker of this kind (one file per checker in `Checkers/`).
    func makeChecker() -> any Checker {
        switch self {
        case .moneyConservation: return MoneyConservationChecker()
        case .stockConservation: return StockConservationChecker()
        case .compensation: return CompensationChecker()
        case .coupon: return CouponChecker()
        case .orderCreation: return OrderCreationChecker()
        case .transition: return TransitionChecker()
        case .cart: return CartChecker()
        case .dailyLimit: return DailyLimitChecker()
        }
    }
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

/// How many operations of one kind ended ok, fail or unknown (a checker's per-entity record).
struct OutcomeCounts {
    var ok = 0
    var fail = 0
    var unknown = 0

    mutating func add(_ outcome: HistoryOutcome) {
        switch outcome {
        case .ok: ok += 1
        case .fail: fail += 1
        case .unknown: unknown += 1
        }
    }

    var total: Int { ok + fail + unknown }
}

extension HistoryEntry {
    /// `client 3 charge amount=1000 user=7`, for examples.
    var shortDescription: String {
        let arguments = arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let lines = items.map { " items " + $0.map { String($0.productId) }.joined(separator: ",") } ?? ""
        return "client \(client) \(operation.rawValue) \(arguments)\(lines)"
    }
}
