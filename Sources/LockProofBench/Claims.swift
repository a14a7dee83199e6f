import Foundation
import LockProofCommerce
import LockProofScenario

/// A verdict on one claim of the seed, computed from the run.
public struct ClaimVerdict: Sendable, Codable, Equatable {
    public enum Verdict: String, Sendable, Codable {
        case holds = "holds"
        case doesNotHold = "does not hold"
        case conditional = "holds only under stated conditions"
        /// The run lacks what the claim needs (an error, a missing cell): never a pass.
        case notMeasured = "not measured"
    }
    public let number: Int
    public let claim: String
    public let verdict: Verdict
    /// The numbers behind the verdict, in one or two sentences.
    public let evidence: String
    /// What measured it, in words a reader knows ("charges, optimistic-retry: hot, 1 and 64 clients").
    public let measuredBy: [String]
    /// The verdict in plain words, first: what it means for the choice, the conditions of a
    /// conditional verdict, and both sides when the evidence cuts both ways.
    public var summary: String = ""
    /// The benchmark cells behind it (ids, for tools).
    public var cells: [String] = []

    public init(number: Int, claim: String, verdict: Verdict, summary: String = "", evidence: String, measuredBy: [String]) {
        self.number = number
        self.claim = claim
        self.verdict = verdict
        self.evidence = evidence
        let ids = measuredBy.filter { !$0.hasPrefix("experiment ") }
        self.cells = ids
        self.measuredBy = describeMeasurements(measuredBy)
        self.summary = summary
    }
}

/// What each claim experiment does, as a reader would name it.
let claimExperimentDescriptions: [String: String] = [
    "coupon-duplicates": "duplicate coupon requests (16 clients, 8 users, 320 requests)",
    "coupon-200-for-100": "200 users racing for 100 coupons",
    "oversell": "16 buyers for a stock of 10, creating then paying",
    "deadlocks-seed": "16 clients creating 4-item orders in shuffled order, locks sorted",
    "deadlocks-unsorted": "the same with locks unsorted",
    "lost-update": "16 clients charging one balance with no lock (naive)",
    "order-state-race": "16 clients racing to complete or cancel 40 orders",
]

/// Cell ids and "experiment NAME" entries as phrases: cells grouped by case and strategy
/// ("charge-balance optimistic-retry: hot and spread, 1 and 64 clients"), experiments described.
func describeMeasurements(_ entries: [String]) -> [String] {
    var groups: [(String, Set<String>, Set<Int>, Set<Int>)] = []
    var phrases: [String] = []
    for entry in entries {
        if entry.hasPrefix("experiment ") {
            let name = String(entry.dropFirst("experiment ".count))
            phrases.append(claimExperimentDescriptions[name] ?? name)
            continue
        }
        let parts = entry.split(separator: "/").map(String.init)
        guard parts.count >= 4, let clients = Int(parts[3].dropFirst()) else {
            phrases.append(entry)
            continue
        }
        let pool = parts.count > 4 ? Int(parts[4].dropFirst(4)) : nil
        let name = "\(parts[0]) \(parts[1])"
        if let index = groups.firstIndex(where: { $0.0 == name }) {
            groups[index].1.insert(parts[2])
            groups[index].2.insert(clients)
            if let pool { groups[index].3.insert(pool) }
        } else {
            groups.append((name, [parts[2]], [clients], pool.map { [$0] } ?? []))
        }
    }
    func and(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }
    let cellPhrases = groups.map { name, contentions, clients, pools in
        let counts = clients.sorted().map(String.init)
        return "\(name): \(and(contentions.sorted())), \(and(counts)) client\(counts == ["1"] ? "" : "s")"
            + (pools.isEmpty ? "" : " on a pool of \(and(pools.sorted().map(String.init)))")
    }
    var seen = Set<String>()
    return (cellPhrases + phrases).filter { seen.insert($0).inserted }
}

/// What the claim experiments (workloads the matrix does not contain) measured.
public struct ClaimMeasurements: Sendable {
    /// Claim 6: duplicate requests stopped by the app-level check and by the unique constraint.
    public var duplicatesByAppCheck = 0
    public var duplicatesByConstraint = 0
    public var duplicateRequests = 0
    /// Claim 7: runs of the 200-for-100 coupon race and how many kept the quantity exact.
    public var couponRuns = 0
    public var couponRunsExact = 0
    public var couponIssued: [Int] = []
    /// Claim 8: create-and-pay with more buyers than stock.
    public var oversellStock = 0
    public var oversellCreated = 0
    public var oversellCreatedQuantity = 0
    public var oversellPaid = 0
    public var oversellRefusedForStock = 0
    public var oversellInvariantHeld = false
    /// Claim 9: deadlocks with sorted and with unsorted product locks (shuffled multi-item orders).
    public var deadlocksSorted = 0
    public var deadlocksUnsorted = 0
    public var deadlockOperationsSorted = 0
    public var deadlockOperationsUnsorted = 0
    /// Claim 10: order-state transitions racing on a few orders.
    public var stateRaceOperations = 0
    public var stateRaceConflicts = 0
    /// Claim 5: the naive read-modify-write of a balance under contention.
    public var naiveChargeOperations = 0
    public var naiveChargeViolations: [String] = []
    public var errors: [String] = []
    public var experiments: [String] = []
}

/// Runs the workloads the claims need beyond the matrix, through the same runner and checkers.
struct ClaimExperiments {
    let runner: ScenarioRunner
    let preset: BenchPreset
    /// The cases selected: only their experiments run (`claimExperimentNames`).
    let cases: [BenchCase]
    let log: (String) -> Void

    func run() -> ClaimMeasurements {
        var measured = ClaimMeasurements()
        // The oversell count reads the history back from its file.
        let previousDirectory = runner.historyDirectory
        let directory = try? temporaryHistoryDirectory()
        runner.historyDirectory = directory
        defer {
            runner.historyDirectory = previousDirectory
            if let directory { try? FileManager.default.removeItem(at: directory) }
        }
        let planned = Set(claimExperimentNames(cases: cases, repetitions: preset.repetitions))
        func attempt(_ name: String, _ body: () throws -> Void) {
            guard planned.contains(name) else { return }
            do {
                try body()
                measured.experiments.append(name)
            } catch {
                measured.errors.append("claim experiment \(name): \(error)")
                log("bench: claim experiment \(name): error: \(error)")
            }
        }
        attempt("coupon-duplicates") {
            // 8 users, 320 requests: 8 can be issued, 312 are duplicates someone must stop.
            let result = try run(
                """
                case: issue-coupon
                strategy: seed
                seed: {users: 8, coupon_quantity: 1000}
                workload: {virtual_users: 16, iterations: 20, pick: random, random_seed: 3}
                """, "coupon-duplicates")
            measured.duplicatesByAppCheck = result.operations.reasons["already_issued_by_application_check"] ?? 0
            measured.duplicatesByConstraint = result.operations.reasons["already_issued_by_unique_constraint"] ?? 0
            measured.duplicateRequests = result.operations.total - result.operations.ok
        }
        for repetition in 0..<max(3, preset.repetitions) {
            attempt("coupon-200-for-100#\(repetition + 1)") {
                let result = try run(
                    """
                    case: issue-coupon
                    strategy: seed
                    seed: {users: 200, coupon_quantity: 100}
                    workload: {virtual_users: 16, iterations: 13, pick: per-client, random_seed: \(repetition + 1)}
                    """, "coupon-200-for-100")
                measured.couponRuns += 1
                if result.checks.allSatisfy(\.passed) && result.runError == nil { measured.couponRunsExact += 1 }
                measured.couponIssued.append(result.operations.ok)
            }
        }
        attempt("oversell") {
            // 16 buyers, stock 10: creating checks stock but does not deduct it; paying does.
            let result = try run(
                """
                case: create-order
                strategy: seed
                seed: {users: 16, products: 1, stock: 10, price: 10, balance: 1000000}
                workload: {virtual_users: 16, iterations: 1, pick: per-client, items: 1, quantity: 1, pay_after_create: true}
                """, "oversell")
            measured.oversellStock = 10
            let history = try result.historyFile.map { try readHistory($0) } ?? []
            let created = history.filter { $0.operation == .create && $0.outcome == .ok }
            measured.oversellCreated = created.count
            measured.oversellCreatedQuantity = created.count
            measured.oversellPaid = history.filter { $0.operation == .pay && $0.outcome == .ok }.count
            measured.oversellRefusedForStock = history.filter {
                $0.operation == .pay && $0.reason == "insufficient_stock"
            }.count
            measured.oversellInvariantHeld = result.checks.allSatisfy(\.passed)
        }
        for strategy in ["seed", "unsorted"] {
            attempt("deadlocks-\(strategy)") {
                let result = try run(
                    """
                    case: create-order
                    strategy: \(strategy)
                    seed: {users: 16, products: 4, stock: 100000000}
                    workload: {virtual_users: 16, duration: \(Int(preset.seconds * 1500))ms, pick: per-client, items: 4, item_order: shuffled, random_seed: 9}
                    """, "deadlocks-\(strategy)")
                let deadlocks = result.statistics.count("lockproof_db_deadlocks_total")
                if strategy == "seed" {
                    measured.deadlocksSorted = deadlocks
                    measured.deadlockOperationsSorted = result.operations.total
                } else {
                    measured.deadlocksUnsorted = deadlocks
                    measured.deadlockOperationsUnsorted = result.operations.total
                }
            }
        }
        attempt("lost-update") {
            // The negative control of claim 5: no lock and no version check on one hot balance.
            let result = try run(
                """
                case: charge-balance
                strategy: naive
                seed: {users: 1}
                workload: {virtual_users: 16, iterations: 20, pick: same, amount: 7}
                """, "lost-update")
            measured.naiveChargeOperations = result.operations.total
            measured.naiveChargeViolations = result.checks.flatMap { $0.violations.map { "\($0.name) ×\($0.count)" } }
        }
        attempt("order-state-race") {
            let result = try run(
                """
                case: order-state
                strategy: seed
                seed: {users: 10, orders: 40}
                workload: {virtual_users: 16, iterations: 10, pick: random, mix: {complete: 1, cancel: 1}, random_seed: 4}
                """, "order-state-race")
            measured.stateRaceOperations = result.operations.total
            measured.stateRaceConflicts = result.operations.reasons["conflict"] ?? 0
        }
        return measured
    }

    private func run(_ body: String, _ name: String) throws -> ScenarioResult {
        let scenario = try ScenarioParser.parse(
            "name: claim-\(name)\ndescription: claim experiment\n\(body)\nexpect: pass\n", file: "<claim \(name)>")
        let result = try runner.run(scenario)
        if let error = result.runError { throw BenchError(error) }
        log("bench: claim experiment \(name): \(result.operations.total) operations, checks \(result.checks.allSatisfy(\.passed) ? "passed" : "caught a violation")")
        return result
    }
}
