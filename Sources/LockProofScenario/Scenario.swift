import Foundation
import LockProofCommerce
import LockProofLocking

/// A workload described in a scenario file (format: `Scenarios/README.md`).
public struct Scenario: Sendable {
    public enum Expectation: String, Sendable, Codable, CaseIterable {
        /// Every check and threshold must pass.
        case pass
        /// A negative control: at least one check must catch a violation.
        case violation
        /// A control of the judging itself: every check passes, and every threshold (at least one)
        /// watches a path the run never took, so each must fail for want of a sample, never pass as 0.
        case unwitnessedThreshold = "unwitnessed-threshold"
        /// A control of the judging itself: the scenario's fault cannot strike (it starts after the
        /// workload), and the run must end in that fault's error, never pass as if it had been tested.
        case faultError = "fault-error"

        /// A control of verify's own judging: its thresholds or its fault are meant to fail.
        public var controlsTheJudging: Bool { self == .unwitnessedThreshold || self == .faultError }
    }

    public var file: String
    public var name: String
    public var description: String
    /// The scenario's main case: `case:` if given, else the case of the first operation of the mix.
    public var caseName: CaseName
    /// The strategy of `caseName`'s operations.
    public var strategy: String
    /// What the virtual users do, with weights and a strategy each; never empty. Operations of
    /// several cases share the seed data (charge + pay on the same users).
    public var operations: [OperationSpec]
    public var seed: SeedSpec
    public var workload: WorkloadSpec
    public var expect: Expectation
    public var thresholds: [Threshold]
    /// The nemesis: faults injected during the run (`Faults/`).
    public var faults: [FaultSpec] = []
    /// `target:`: the target file this scenario runs through (issue 18), nil: in process unless
    /// `--target` names one. A scenario's `target:` and a different `--target` are refused.
    public var target: TargetReference? = nil

    /// The same scenario at one of its virtual-user counts (a sweep runs each).
    func at(virtualUsers: Int) -> Scenario {
        var copy = self
        copy.workload.virtualUsers = [virtualUsers]
        if workload.virtualUsers.count > 1 { copy.name = "\(name)@vu\(virtualUsers)" }
        return copy
    }

    public var runs: [Scenario] { workload.virtualUsers.map { at(virtualUsers: $0) } }

    /// Every case whose operations the scenario runs (create-order's payments add process-payment).
    public var cases: [CaseName] {
        var result: [CaseName] = []
        for operation in operations where !result.contains(operation.caseName) { result.append(operation.caseName) }
        for next in followUps where !result.contains(next.caseName) { result.append(next.caseName) }
        return result
    }

    /// Does the scenario perform `operation` (`pay` also when create-order pays what it creates)?
    public func performs(_ operation: OperationName) -> Bool {
        operations.contains { $0.operation == operation } || (workload.payAfterCreate && followUps.contains(operation))
    }

    /// Operations performed after one of the mix's own (`workload.pay_after_create`: `pay`).
    var followUps: [OperationName] {
        guard workload.payAfterCreate else { return [] }
        var result: [OperationName] = []
        for operation in operations {
            for next in operation.caseName.descriptor.followUps where !result.contains(next) { result.append(next) }
        }
        return result
    }

    /// `charge-balance` or, for a mix of cases, `charge-balance+process-payment`.
    public var caseLabel: String {
        operations.allSatisfy { $0.caseName == caseName } ? caseName.rawValue : cases.map(\.rawValue).joined(separator: "+")
    }

    /// `seed` or, when operations differ, `charge:naive, pay:seed`.
    public var strategyLabel: String {
        operations.allSatisfy { $0.strategy == strategy }
            ? strategy : operations.map { "\($0.name):\($0.strategy)" }.joined(separator: ", ")
    }

    /// Which lock kinds the scenario's strategies take (follow-ups use their case's seed strategy).
    var locksTaken: Set<LockKind> {
        var taken = operations.reduce(into: Set<LockKind>()) { $0.formUnion($1.traits?.locks ?? []) }
        for next in followUps { taken.formUnion(next.caseName.traits(Self.followUpStrategy)?.locks ?? []) }
        return taken
    }

    /// The strategy of follow-up operations (create-order's payments): the seed's.
    static let followUpStrategy = "seed"

    /// Does a strategy of the scenario retry on conflict (`workload.retry` applies)?
    var retries: Bool { operations.contains { $0.traits?.retries == true } }
}

/// One operation of a scenario's mix.
public struct OperationSpec: Sendable, Equatable {
    public var operation: OperationName
    /// A strategy of the operation's case (validated by the parser).
    public var strategy: String
    /// Relative weight in the mix (≥ 1).
    public var weight: Int

    public init(operation: OperationName, strategy: String, weight: Int) {
        self.operation = operation
        self.strategy = strategy
        self.weight = weight
    }

    /// `charge`, `pay`, `issue`, `create`, `complete`, `cancel`, `add`.
    public var name: String { operation.rawValue }
    public var caseName: CaseName { operation.caseName }
    /// The traits of its strategy; nil for a strategy its case does not have, which the parser
    /// reports (and goes on reading the file, so this must not trap).
    var traits: StrategyTraits? { caseName.traits(strategy) }
}

/// The initial data.
public struct SeedSpec: Sendable, Equatable {
    public var users = 10
    public var balance = 0
    public var products = 10
    public var price = 1_000
    public var stock = 100
    public var couponQuantity = 100
    /// PENDING orders made before the run (process-payment and order-state work on them).
    public var orders = 0
    /// Products per pre-made order.
    public var orderItems = 1
    /// Quantity of each product on a pre-made order.
    public var orderQuantity = 1
    /// Opening quantity of every (user, product) cart line; 0 = no line until the first add.
    public var cartQuantity = 0
    /// The `seed.NAME` keys of the cases' own (`CaseStorage.seedKeys`) the file set.
    public var caseValues: [String: Int] = [:]
}

/// How clients choose the user (or order, or cart line) each operation works on.
public enum PickMode: String, Sendable, CaseIterable {
    /// Everyone works on the first one: maximum contention.
    case same
    /// Client i works on number i (modulo the pool); in a mix, the k-th occurrence of every
    /// operation works on number k, so the k-th complete meets the k-th cancel.
    case perClient = "per-client"
    /// Every operation on a number of its own (its slot, modulo the pool): operations of a mix
    /// never meet while the pool lasts (uncontended cost).
    case perOperation = "per-operation"
    /// Uniformly at random (seeded).
    case random
}

public enum ItemOrder: String, Sendable, CaseIterable {
    case sorted
    case shuffled
    case reversed
}

public struct WorkloadSpec: Sendable, Equatable {
    public var virtualUsers: [Int] = [1]
    /// Operations per virtual user; nil when the run is bounded by `durationSeconds`.
    public var iterations: Int? = nil
    public var durationSeconds: Double? = nil
    public var pick: PickMode = .random
    public var amount = 1_000
    /// Items per created order (create-order).
    public var items = 1
    public var quantity = 1
    public var itemOrder: ItemOrder = .sorted
    public var thinkMilliseconds = 0.0
    public var gatewayFailureRate = 0.0
    public var gatewayLatencyMilliseconds: ClosedRange<Double> = 0...0
    public var randomSeed: UInt64 = 1
    /// create-order: pay each created order right away.
    public var payAfterCreate = false
    /// charge-balance: send an idempotency key with every charge.
    public var idempotencyKeys = false
    /// charge-balance with keys: how many operations send each key (a client retrying a charge it
    /// did not hear back from). Consecutive slots share a key, so duplicates race each other.
    public var idempotencyDuplicates = 1
    public var retryMaxAttempts: Int? = nil
    public var lockLeaseMilliseconds: Int? = nil
    public var lockWaitMilliseconds: Int? = nil
    /// `workload.lock.renew: false`: a lease of fixed length, no watchdog (Redisson's
    /// `lock(leaseTime)`); nil renews (the standard).
    public var lockRenew: Bool? = nil
    /// The Redis circuit breaker (`workload.breaker`); nil keeps the standard 3 failures, 1 s.
    public var breakerFailureThreshold: Int? = nil
    public var breakerCoolDownMilliseconds: Int? = nil
    public var rowLockTimeoutMilliseconds: Int? = nil
    /// A run that has not finished by then is a hang: it fails.
    public var timeoutSeconds = 300.0
    /// Connections the virtual users share (per instance); nil = one of each per virtual user.
    public var connections: ConnectionsSpec? = nil
    /// Payment recovery run during the workload by several workers at once; nil = only once, after it.
    public var recovery: RecoverySpec? = nil
}

/// `workload.recovery`: `workers` threads, each with a session of its own, run the payment recovery
/// every `everySeconds` while the clients run (as several `serve` instances each would), settling
/// intents at least `minimumAgeSeconds` old. The single pass after the run still follows.
public struct RecoverySpec: Sendable, Equatable {
    public var workers: Int
    public var everySeconds: Double
    public var minimumAgeSeconds: Double

    public init(workers: Int, everySeconds: Double, minimumAgeSeconds: Double = 0) {
        self.workers = workers
        self.everySeconds = everySeconds
        self.minimumAgeSeconds = minimumAgeSeconds
    }
}

/// `workload.connections`: pools the virtual users borrow from, as an application's pool.
public struct ConnectionsSpec: Sendable, Equatable {
    public var postgres: Int
    public var redis: Int
    /// How long a borrower waits for a connection before its operation fails (`pool_timeout`).
    public var waitSeconds = 30.0

    public init(postgres: Int, redis: Int, waitSeconds: Double = 30) {
        self.postgres = postgres
        self.redis = redis
        self.waitSeconds = waitSeconds
    }
}

/// A scenario's `target:` (issue 18): the file as written, resolved against the scenario file's
/// folder, and where it was written (for errors that name it).
public struct TargetReference: Sendable, Equatable {
    /// As written in the scenario file.
    public let written: String
    /// `written` resolved against the scenario file's folder (an absolute path stays as it is).
    public let path: String
    public let line: Int
    public let column: Int

    public init(written: String, scenarioFile: String, line: Int, column: Int) {
        self.written = written
        let folder = (scenarioFile as NSString).deletingLastPathComponent
        let joined = written.hasPrefix("/") ? written : (folder.isEmpty ? written : (folder as NSString).appendingPathComponent(written))
        self.path = (joined as NSString).standardizingPath
        self.line = line
        self.column = column
    }

    /// The same file as `other` (both resolved through symbolic links against the current folder).
    public func names(_ other: String) -> Bool {
        Self.canonical(path) == Self.canonical(other)
    }

    static func canonical(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: absolute).resolvingSymlinksInPath().standardizedFileURL.path
    }
}
