import Foundation
import LockProofCommerce
import LockProofScenario
import XCTest

// The workload sections of a scenario file, one class each (the whole-file tests are in
// ScenarioParserTests.swift, with `scenarioProblems`).

/// Mixed workloads (issue 7): operations of several cases, each with its strategy.
final class MixedScenarioParserTests: XCTestCase {
    private func problems(_ text: String) -> [String] { scenarioProblems(text) }

    private let mixed = """
        name: m
        seed: {users: 1, orders: 4}
        workload:
          virtual_users: 4
          iterations: 1
          mix:
            charge: {weight: 2, strategy: naive}
            pay: 1
        """

    func testAMixOfSeveralCasesGivesEachOperationItsCaseAndStrategy() throws {
        let scenario = try ScenarioParser.parse(mixed, file: "t.yaml")
        XCTAssertEqual(scenario.operations, [
            OperationSpec(operation: .charge, strategy: "naive", weight: 2),
            OperationSpec(operation: .pay, strategy: "seed", weight: 1),
        ])
        XCTAssertEqual(scenario.cases, [.chargeBalance, .processPayment])
        XCTAssertEqual(scenario.caseLabel, "charge-balance+process-payment")
        XCTAssertEqual(scenario.strategyLabel, "charge:naive, pay:seed")
        XCTAssertEqual(
            Set(checkers(for: scenario).map(\.name)), ["money-conservation", "stock-conservation", "compensation", "lock-exclusivity", "no-deadlock"])
    }

    func testASingleCaseFileStillParsesAndItsStrategyAppliesToItsOperations() throws {
        let scenario = try ScenarioParser.parse(
            "name: s\ncase: order-state\nstrategy: naive\nseed: {orders: 2}\nworkload: {virtual_users: 3, iterations: 1, mix: {complete: 1, cancel: 1, pay: 1}}",
            file: "t.yaml")
        XCTAssertEqual(scenario.caseName, .orderState)
        XCTAssertEqual(scenario.operations.map { "\($0.name):\($0.strategy)" }, ["cancel:naive", "complete:naive", "pay:seed"])
        XCTAssertEqual(checkers(for: scenario).map(\.name).contains("single-winner"), true)
        let plain = try ScenarioParser.parse("name: p\ncase: charge-balance\nworkload: {virtual_users: 1, iterations: 1}", file: "t.yaml")
        XCTAssertEqual(plain.operations, [OperationSpec(operation: .charge, strategy: "seed", weight: 1)])
    }

    func testMixProblemsAreNamed() {
        XCTAssertTrue(problems(mixed + "\nstrategy: naive").contains { $0.contains("strategy: applies to the operations of 'case'") })
        XCTAssertTrue(
            problems(mixed.replacingOccurrences(of: "strategy: naive", with: "strategy: unsorted"))
                .contains { $0.contains("workload.mix.charge.strategy: found 'unsorted'; charge (charge-balance) has seed") })
        XCTAssertTrue(problems(mixed + "\ncase: issue-coupon").contains { $0.contains("workload.mix has none of its operations") })
        XCTAssertTrue(problems(mixed.replacingOccurrences(of: "pay: 1", with: "paid: 1")).contains { $0.contains("did you mean 'pay'") })
        XCTAssertTrue(problems(mixed.replacingOccurrences(of: "orders: 4", with: "orders: 0")).contains { $0.contains("seed.orders: pay work on orders") })
        XCTAssertTrue(
            problems(mixed.replacingOccurrences(of: "virtual_users: 4", with: "virtual_users: 4\n  pay_after_create: true"))
                .contains { $0.contains("only create-order can pay") })
    }

    func testAMixWhoseWeightsLeaveAnOperationOutIsRefusedWithWhy() {
        let text = "name: r\ncase: order-state\nseed: {orders: 1}\nworkload: {virtual_users: 2, iterations: 1, mix: {complete: 100, cancel: 100}}"
        XCTAssertTrue(
            problems(text).contains { $0.contains("2 operations, weights totalling 200 give cancel 2, complete 0: complete never runs, so nothing races it") },
            "\(problems(text))")
    }

    func testWeightsArePickedByCumulativeRangesNotExpandedArrays() {
        // Expanded into an array, these weights would take 2 × 10⁹ entries per virtual user.
        let plan = MixPlan([
            OperationSpec(operation: .cancel, strategy: "seed", weight: 1_000_000_000),
            OperationSpec(operation: .complete, strategy: "seed", weight: 1_000_000_000),
        ])
        XCTAssertEqual(plan.total, 2_000_000_000)
        XCTAssertEqual(plan.assign(slot: 999_999_999).operation.name, "cancel")
        XCTAssertEqual(plan.assign(slot: 1_000_000_000).operation.name, "complete")
        XCTAssertEqual(plan.assign(slot: 1_000_000_000).occurrence, 0)
        XCTAssertEqual(plan.assign(slot: 2_000_000_001).occurrence, 1_000_000_001)
        let small = MixPlan([
            OperationSpec(operation: .complete, strategy: "seed", weight: 3),
            OperationSpec(operation: .cancel, strategy: "seed", weight: 1),
        ])
        XCTAssertEqual((0..<8).map { small.assign(slot: $0).operation.operation }, [.complete, .complete, .complete, .cancel, .complete, .complete, .complete, .cancel])
        XCTAssertEqual((0..<8).map { small.assign(slot: $0).occurrence }, [0, 1, 2, 0, 3, 4, 5, 1])
        XCTAssertEqual(small.counts(slots: 6), [5, 1])
    }

    /// The obvious race — 100 clients over 50 orders, per-client, complete against cancel — pits
    /// one complete against one cancel on every order (by slot parity both got the same one).
    func testTheObviousRaceScenarioPitsCompleteAgainstCancelOnEveryOrder() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scenarios").standardized
        let scenario = try ScenarioParser.load(path: folder.appendingPathComponent("order-state-race-complete-cancel.yaml").path)
        XCTAssertEqual(scenario.workload.virtualUsers, [100])
        XCTAssertEqual(scenario.seed.orders, 50)
        XCTAssertEqual(scenario.workload.pick, .perClient)
        let plan = MixPlan(scenario.operations)
        var perOrder: [Int: [String]] = [:]
        for slot in 0..<(100 * scenario.workload.iterations!) {
            let (operation, occurrence) = plan.assign(slot: slot)
            perOrder[occurrence % scenario.seed.orders, default: []].append(operation.name)
        }
        XCTAssertEqual(perOrder.count, 50)
        for (order, operations) in perOrder { XCTAssertEqual(operations.sorted(), ["cancel", "complete"], "order \(order)") }
    }
}

/// Strict input (issue 7): a key that no operation of the scenario reads is refused, with why.
final class StrictScenarioInputTests: XCTestCase {
    private func scenario(_ caseName: String, seed: String = "users: 1", workload: String = "", strategy: String = "seed") -> String {
        "name: s\ncase: \(caseName)\nstrategy: \(strategy)\nseed: {\(seed)}\nworkload: {virtual_users: 1, iterations: 1\(workload)}"
    }

    /// The operations that read `key`, as the refusal names them (from the descriptors).
    private func readers(_ key: ScenarioKey) -> String {
        OperationName.allCases.filter { $0.reads.contains(key) }.map(\.rawValue).joined(separator: ", ")
    }

    func testKeysThatDoNotApplyToTheScenariosOperationsAreRefusedWithTheReason() {
        XCTAssertTrue(
            scenarioProblems(scenario("process-payment", seed: "orders: 1", workload: ", amount: 5"))
                .contains { $0.contains("workload.amount: does not apply: this scenario runs pay, and it is read only by \(readers(.amount)); a payment costs its order's order_items × order_quantity × price") },
            "\(scenarioProblems(scenario("process-payment", seed: "orders: 1", workload: ", amount: 5")))")
        XCTAssertTrue(
            scenarioProblems(scenario("charge-balance", workload: ", gateway: {failure_rate: 0.5}"))
                .contains { $0.contains("workload.gateway: does not apply: this scenario runs charge") && $0.contains("only a payment calls the gateway") })
        XCTAssertTrue(
            scenarioProblems(scenario("issue-coupon", seed: "users: 1, orders: 5"))
                .contains { $0.contains("seed.orders: does not apply: this scenario runs issue, and it is read only by pay, complete, cancel") })
        XCTAssertTrue(
            scenarioProblems(scenario("charge-balance", workload: ", retry: {max_attempts: 3}", strategy: "pessimistic"))
                .contains { $0.contains("workload.retry: does not apply: no strategy of this scenario (pessimistic) retries") })
        XCTAssertTrue(
            scenarioProblems(scenario("charge-balance", workload: ", lock: {wait_ms: 10}", strategy: "atomic"))
                .contains { $0.contains("workload.lock: does not apply") && $0.contains("takes the Redis lock") })
        XCTAssertTrue(scenarioProblems(scenario("charge-balance", seed: "users: 1, cart_quantity: 1")).contains { $0.contains("seed.cart_quantity: does not apply") })
        // workload.lock.renew: a lease of fixed length; anything but a boolean is named.
        XCTAssertEqual(scenarioProblems(scenario("charge-balance", workload: ", lock: {lease_ms: 100, renew: false}")), [])
        XCTAssertEqual(
            try ScenarioParser.parse(scenario("charge-balance", workload: ", lock: {renew: false}"), file: "t.yaml").workload.lockRenew, false)
        XCTAssertTrue(
            scenarioProblems(scenario("charge-balance", workload: ", lock: {renew: sometimes}"))
                .contains { $0.contains("workload.lock.renew: found") && $0.contains("expected true or false") })
        // In a mix, a key applies when any of its operations reads it.
        XCTAssertEqual(
            scenarioProblems("name: m\nseed: {users: 1, balance: 5, orders: 2}\nworkload: {virtual_users: 2, iterations: 1, amount: 5, mix: {charge: 1, pay: 1}}"), [])
    }

    func testSeedSetsACartLinesOpeningQuantity() throws {
        let parsed = try ScenarioParser.parse(scenario("cart-quantity", seed: "users: 1, products: 1, cart_quantity: 1"), file: "t.yaml")
        XCTAssertEqual(parsed.seed.cartQuantity, 1)
        XCTAssertTrue(scenarioProblems(scenario("cart-quantity", seed: "users: 2000, products: 1000, cart_quantity: 1")).contains { $0.contains("expected at most 1000000") })
    }
}

/// `workload.breaker` (issue 8): the Redis circuit breaker of a scenario, validated like every key.
final class BreakerParserTests: XCTestCase {
    private func scenario(_ breaker: String, strategy: String = "seed") -> String {
        "name: b\ncase: charge-balance\nstrategy: \(strategy)\nseed: {users: 1}\nworkload: {virtual_users: 1, iterations: 1, breaker: \(breaker)}"
    }

    /// An order may name one product on several lines (issue 21, red team round 2): lines beyond
    /// seed.products wrap around the products, for created and for pre-made orders.
    func testOrderLinesMayWrapPastTheProducts() throws {
        let created = "name: c\ncase: create-order\nseed: {products: 2, stock: 3}\nworkload: {virtual_users: 1, iterations: 1, items: 3}"
        XCTAssertEqual(scenarioProblems(created), [])
        XCTAssertEqual(try ScenarioParser.parse(created, file: "t.yaml").workload.items, 3)
        let premade = "name: p\ncase: process-payment\nseed: {products: 1, orders: 4, order_items: 2}\nworkload: {virtual_users: 1, iterations: 1}"
        XCTAssertEqual(scenarioProblems(premade), [])
        XCTAssertEqual(try ScenarioParser.parse(premade, file: "t.yaml").seed.orderItems, 2)
    }

    func testBreakerSettingsAreRead() throws {
        let parsed = try ScenarioParser.parse(scenario("{failure_threshold: 1000, cool_down_ms: 100}"), file: "t.yaml")
        XCTAssertEqual(parsed.workload.breakerFailureThreshold, 1000)
        XCTAssertEqual(parsed.workload.breakerCoolDownMilliseconds, 100)
        let unset = try ScenarioParser.parse(scenario("{}"), file: "t.yaml")
        XCTAssertNil(unset.workload.breakerFailureThreshold)
        XCTAssertNil(unset.workload.breakerCoolDownMilliseconds)
    }

    func testBadBreakerValuesAreNamedWithFieldAndValue() {
        let cases: [(String, String)] = [
            ("{failure_threshold: 0}", "workload.breaker.failure_threshold: found 0; expected a whole number in 1…1000000"),
            ("{failure_threshold: 2.5}", "workload.breaker.failure_threshold: found the number 2.5"),
            ("{cool_down_ms: -1}", "workload.breaker.cool_down_ms: found -1; expected a whole number in 0…600000"),
            ("{cool_down_ms: 600001}", "workload.breaker.cool_down_ms: found 600001"),
            ("{cooldown_ms: 5}", "workload.breaker: unknown key 'cooldown_ms' (did you mean 'cool_down_ms'?)"),
            ("5", "workload.breaker: found"),
        ]
        for (breaker, fragment) in cases {
            let problems = scenarioProblems(scenario(breaker))
            XCTAssertTrue(problems.contains { $0.contains(fragment) }, "\(breaker): \(problems)")
        }
        XCTAssertTrue(
            scenarioProblems(scenario("{failure_threshold: 5}", strategy: "atomic"))
                .contains { $0.contains("workload.breaker: does not apply: no strategy of this scenario (atomic) takes the Redis lock") })
    }
}

/// `fenced_writes_refused` (issue 8): a threshold on the database's fencing refusals.
final class FencedWritesThresholdTests: XCTestCase {
    private func scenario(strategy: String) -> String {
        "name: f\ncase: charge-balance\nstrategy: \(strategy)\nseed: {users: 1}\nworkload: {virtual_users: 1, iterations: 1}\nthresholds: {fenced_writes_refused: [\"count > 0\"]}"
    }

    func testOnlyTheFencedStrategyCanBeJudgedByItsRefusals() throws {
        XCTAssertTrue(
            scenarioProblems(scenario(strategy: "seed"))
                .contains { $0.contains("'fenced_writes_refused' cannot have samples: only redis-lock-fenced checks fencing tokens (this scenario runs seed)") },
            "\(scenarioProblems(scenario(strategy: "seed")))")
        let parsed = try ScenarioParser.parse(scenario(strategy: "redis-lock-fenced"), file: "t.yaml")
        XCTAssertEqual(parsed.thresholds.map(\.metric), ["fenced_writes_refused"])
    }
}

/// `workload.connections` (issue 7).
final class ConnectionsParserTests: XCTestCase {
    private let base = "name: c\ncase: charge-balance\nworkload: {virtual_users: 50, iterations: 1"

    func testConnectionsTakeANumberOrAMapping() throws {
        XCTAssertEqual(try ScenarioParser.parse(base + ", connections: 20}", file: "t.yaml").workload.connections, ConnectionsSpec(postgres: 20, redis: 20))
        XCTAssertEqual(
            try ScenarioParser.parse(base + ", connections: {postgres: 4, redis: 8, wait: 2s}}", file: "t.yaml").workload.connections,
            ConnectionsSpec(postgres: 4, redis: 8, waitSeconds: 2))
        XCTAssertNil(try ScenarioParser.parse(base + "}", file: "t.yaml").workload.connections, "one of each per virtual user by default")
        XCTAssertTrue(scenarioProblems(base + ", connections: 0}").contains { $0.contains("workload.connections: found 0") })
        XCTAssertTrue(scenarioProblems(base + ", connections: {redis: 4}}").contains { $0.contains("missing key 'postgres'") })
    }

    func testAPoolWaitThresholdNeedsAPool() {
        let threshold = "\nthresholds:\n  lockproof_pool_wait_seconds{pool=\"postgres\"}: [\"p(99) < 1s\"]"
        XCTAssertTrue(scenarioProblems(base + "}" + threshold).contains { $0.contains("borrow from no pool (set workload.connections)") })
        XCTAssertEqual(scenarioProblems(base + ", connections: 5}" + threshold), [])
    }
}

/// `workload.recovery` (issue 21): payment recovery during the workload, from several workers.
final class RecoveryParserTests: XCTestCase {
    private let pay = "name: r\ncase: process-payment\nseed: {orders: 10}\nworkload:\n  virtual_users: 2\n  iterations: 1\n"

    func testRecoveryTakesWorkersEveryAndAMinimumAge() throws {
        XCTAssertEqual(
            try ScenarioParser.parse(pay + "  recovery: {workers: 3, every: 20ms}\n", file: "t.yaml").workload.recovery,
            RecoverySpec(workers: 3, everySeconds: 0.02))
        XCTAssertEqual(
            try ScenarioParser.parse(pay + "  recovery: {workers: 1, every: 1s, min_age_ms: 250}\n", file: "t.yaml").workload.recovery,
            RecoverySpec(workers: 1, everySeconds: 1, minimumAgeSeconds: 0.25))
        XCTAssertNil(try ScenarioParser.parse(pay, file: "t.yaml").workload.recovery, "once, after the workload, by default")
    }

    func testBadRecoveryIsReportedAtItsPosition() {
        func expect(_ recovery: String, _ position: String, _ fragment: String, line: UInt = #line) {
            let found = scenarioProblems(pay + "  recovery: " + recovery + "\n")
            XCTAssertTrue(
                found.contains { $0.hasPrefix(position + ":") && $0.contains(fragment) }, "\(found)", line: line)
        }
        expect("{workers: 0, every: 20ms}", "7:23", "workload.recovery.workers: found 0; expected a whole number in 1…64")
        expect("{workers: 2, every: -1s}", "7:33", "workload.recovery.every")
        expect("{workers: 2}", "7:13", "workload.recovery: missing key 'every'")
        expect("{workers: 2, every: 1s, min_age: 5}", "7:37", "unknown key 'min_age'")
        expect("3", "7:13", "workload.recovery: found")
    }

    func testRecoveryNeedsPayments() {
        let charge = "name: r\ncase: charge-balance\nworkload:\n  virtual_users: 2\n  iterations: 1\n  recovery: {workers: 2, every: 1s}\n"
        XCTAssertTrue(
            scenarioProblems(charge).contains { $0.hasPrefix("6:3:") && $0.contains("workload.recovery: does not apply") },
            "\(scenarioProblems(charge))")
    }
}
