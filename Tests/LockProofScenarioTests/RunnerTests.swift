import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofScenario
import LockProofTestSupport
import XCTest

/// Scenarios run for real; every checker is shown passing on a correct strategy and catching its
/// negative control.
final class RunnerTests: XCTestCase {
    private func run(_ yaml: String, historyDirectory: URL? = nil) throws -> ScenarioResult {
        let scenario = try ScenarioParser.parse(yaml, file: "test.yaml")
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.historyDirectory = historyDirectory
        return try runner.run(scenario)
    }

    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-runner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func historyEntries(_ url: URL) throws -> [HistoryEntry] {
        let text = try String(contentsOf: url, encoding: .utf8)
        // The operations' lines (the lock holds' and the nemesis' carry a process).
        return try text.split(separator: "\n").filter { !$0.contains("\"process\":") }
            .map { try JSONDecoder().decode(HistoryEntry.self, from: Data($0.utf8)) }
    }

    private func scenario(_ caseName: String, _ strategy: String, seed: String, workload: String, expect: String = "pass", thresholds: String = "") -> String {
        """
        name: t-\(caseName)-\(strategy)
        case: \(caseName)
        strategy: \(strategy)
        seed: {\(seed)}
        workload: {start: barrier, \(workload)}
        expect: \(expect)
        \(thresholds.isEmpty ? "" : "thresholds:\n" + thresholds)
        """
    }

    private func violations(_ result: ScenarioResult, _ checker: String) -> [String] {
        result.checks.first { $0.name == checker }?.violations.map(\.name) ?? ["checker \(checker) did not run"]
    }

    func testChargeBalance() throws {
        let folder = try temporaryFolder()
        let seed = try run(
            scenario("charge-balance", "seed", seed: "users: 2", workload: "virtual_users: 16, iterations: 5, pick: random, think_ms: 1"),
            historyDirectory: folder)
        XCTAssertTrue(seed.passed, ReportWriter.summary(seed))
        XCTAssertEqual(seed.count(.ok), 80)
        XCTAssertEqual(seed.historyFile, folder.appendingPathComponent("t-charge-balance-seed.history.jsonl"))
        let history = try historyEntries(try XCTUnwrap(seed.historyFile))
        XCTAssertEqual(history.count, 80)
        XCTAssertTrue(history.allSatisfy { $0.end >= $0.start && $0.arguments["amount"] == 1000 })

        let naive = try run(scenario("charge-balance", "naive", seed: "users: 1", workload: "virtual_users: 16, iterations: 5, pick: same, think_ms: 2", expect: "violation"))
        XCTAssertTrue(naive.violationCaught)
        XCTAssertTrue(violations(naive, "money-conservation").contains("balance-below-acknowledged"), ReportWriter.summary(naive))
        XCTAssertTrue(naive.passed, "a caught negative control passes")
    }

    func testProcessPaymentWithFailingGateway() throws {
        let seed = try run(scenario(
            "process-payment", "seed", seed: "users: 2, balance: 20000, products: 3, price: 1000, stock: 50, orders: 32, order_items: 2",
            workload: "virtual_users: 8, iterations: 4, pick: per-client, gateway: {failure_rate: 0.5}",
            thresholds: "  lockproof_compensations_total{outcome=\"succeeded\"}: [\"count > 0\"]"))
        XCTAssertTrue(seed.passed, ReportWriter.summary(seed))
        XCTAssertEqual(Set(seed.checks.map(\.name)), ["money-conservation", "stock-conservation", "compensation", "lock-exclusivity", "no-deadlock"])

        let naive = try run(scenario(
            "process-payment", "naive", seed: "users: 1, balance: 50000, products: 2, stock: 1000, orders: 16, order_quantity: 10",
            workload: "virtual_users: 16, iterations: 1, pick: per-client, think_ms: 2", expect: "violation"))
        XCTAssertTrue(naive.violationCaught, ReportWriter.summary(naive))
        XCTAssertTrue(violations(naive, "money-conservation").contains("ledger-mismatch"), ReportWriter.summary(naive))
        // More payments acknowledged than the balance covers: an overdraw, named as one, not as
        // a balance above bounds that are themselves below zero.
        XCTAssertTrue(violations(naive, "money-conservation").contains("negative-balance"), ReportWriter.summary(naive))
        XCTAssertFalse(violations(naive, "money-conservation").contains("balance-above-acknowledged"), ReportWriter.summary(naive))
    }

    /// The payment-unsettled control through the runner, end-of-run recovery included: the open
    /// intents survive it, and the compensation checker names them and nothing else; every other
    /// checker passes.
    func testReconciliationDeferredIsNamedOnlyAsPaymentUnsettled() throws {
        let result = try run(scenario(
            "process-payment", "reconciliation-deferred", seed: "users: 2, balance: 1000, products: 2, price: 100, orders: 4",
            workload: "virtual_users: 2, iterations: 2, pick: per-client, gateway: {failure_rate: 0}", expect: "violation"))
        XCTAssertTrue(result.violationCaught, ReportWriter.summary(result))
        let compensation = result.checks.first { $0.name == "compensation" }
        XCTAssertEqual(compensation?.violations.map(\.name), ["payment-unsettled"], ReportWriter.summary(result))
        XCTAssertEqual(compensation?.violations.first?.count, 4, "one per order")
        XCTAssertEqual(result.recovery?.stillOpen, 4)
        for check in result.checks where check.name != "compensation" {
            XCTAssertTrue(check.violations.isEmpty, "\(check.name): \(ReportWriter.summary(result))")
        }
    }

    /// The compensation-pending control through the runner: the end-of-run recovery leaves a
    /// compensation of a PAID order pending, and only the compensation checker's pending check names it.
    func testCompensationWrittenAheadIsNamedOnlyAsCompensationPending() throws {
        let result = try run(scenario(
            "process-payment", "compensation-written-ahead", seed: "users: 2, balance: 1000, products: 2, price: 100, orders: 4",
            workload: "virtual_users: 2, iterations: 2, pick: per-client, gateway: {failure_rate: 0}", expect: "violation"))
        XCTAssertTrue(result.violationCaught, ReportWriter.summary(result))
        let compensation = result.checks.first { $0.name == "compensation" }
        XCTAssertEqual(compensation?.violations.map(\.name), ["compensation-pending"], ReportWriter.summary(result))
        XCTAssertEqual(compensation?.violations.first?.count, 4, "one per order")
        XCTAssertEqual(result.recovery?.compensationsPendingAfter, 4)
        for check in result.checks where check.name != "compensation" {
            XCTAssertTrue(check.violations.isEmpty, "\(check.name): \(ReportWriter.summary(result))")
        }
    }

    func testIssueCoupon() throws {
        let seed = try run(scenario("issue-coupon", "atomic", seed: "users: 40, coupon_quantity: 15", workload: "virtual_users: 20, iterations: 2, pick: per-client"))
        XCTAssertTrue(seed.passed, ReportWriter.summary(seed))
        XCTAssertEqual(seed.count(.ok), 15)
        let naive = try run(scenario("issue-coupon", "naive", seed: "users: 30, coupon_quantity: 5", workload: "virtual_users: 30, iterations: 1, pick: per-client, think_ms: 2", expect: "violation"))
        XCTAssertTrue(violations(naive, "coupon-quantity").contains("over-issued"), ReportWriter.summary(naive))
    }

    func testCreateOrderDeadlocksAreCaughtOnlyWithUnsortedLocks() throws {
        let sorted = try run(scenario("create-order", "seed", seed: "users: 16, products: 6, stock: 1000", workload: "virtual_users: 16, iterations: 3, pick: per-client, items: 4, item_order: shuffled, think_ms: 1"))
        XCTAssertTrue(sorted.passed, ReportWriter.summary(sorted))
        XCTAssertEqual(violations(sorted, "no-deadlock"), [])
        let unsorted = try run(scenario("create-order", "unsorted", seed: "users: 16, products: 6, stock: 1000", workload: "virtual_users: 16, iterations: 3, pick: per-client, items: 4, item_order: shuffled, think_ms: 1", expect: "violation"))
        XCTAssertEqual(violations(unsorted, "no-deadlock").first, "deadlock", ReportWriter.summary(unsorted))
        XCTAssertGreaterThan(unsorted.operations.reasons["deadlock"] ?? 0, 0)
    }

    func testOrderStateAndCart() throws {
        let seed = try run(scenario("order-state", "seed", seed: "orders: 10", workload: "virtual_users: 16, iterations: 3, pick: random, think_ms: 1, mix: {complete: 1, cancel: 1}"))
        XCTAssertTrue(seed.passed, ReportWriter.summary(seed))
        let naive = try run(scenario("order-state", "naive", seed: "orders: 5", workload: "virtual_users: 16, iterations: 2, pick: random, think_ms: 2, mix: {complete: 1, cancel: 1}", expect: "violation"))
        XCTAssertTrue(violations(naive, "single-winner").contains("several-winners"), ReportWriter.summary(naive))

        let cart = try run(scenario("cart-quantity", "seed", seed: "users: 1, products: 1", workload: "virtual_users: 8, iterations: 5, pick: same, think_ms: 1"))
        XCTAssertTrue(cart.passed, ReportWriter.summary(cart))
        XCTAssertGreaterThan(cart.operations.reasons["conflict"] ?? 0, 0)
        let lossy = try run(scenario("cart-quantity", "naive", seed: "users: 1, products: 1", workload: "virtual_users: 8, iterations: 5, pick: same, think_ms: 2", expect: "violation"))
        XCTAssertEqual(violations(lossy, "cart-increments"), ["lost-increment"], ReportWriter.summary(lossy))
    }

    func testUndetectedNegativeControlFails() throws {
        // A correct strategy declared as a negative control: nothing to catch, so the scenario fails.
        let result = try run(scenario("charge-balance", "atomic", seed: "users: 1", workload: "virtual_users: 4, iterations: 2", expect: "violation"))
        XCTAssertFalse(result.violationCaught)
        XCTAssertFalse(result.passed)
    }

    func testThresholdsAreEvaluatedAndNeverPassVacuously() throws {
        let result = try run(scenario(
            "charge-balance", "pessimistic", seed: "users: 1", workload: "virtual_users: 4, iterations: 5",
            thresholds: """
                  throughput: ["count == 20", "rate > 0"]
                  lockproof_lock_wait_seconds{lock="row"}: ["count == 20", "p(99) < 60s"]
                  lockproof_retry_exhausted_total: ["count == 0"]
                  latency: ["max < 0s"]
                """))
        let byExpression = Dictionary(result.thresholds.map { ("\($0.metric) \($0.expression)", $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byExpression["throughput count == 20"]?.passed, true)
        XCTAssertEqual(byExpression["throughput rate > 0"]?.passed, true)
        XCTAssertEqual(byExpression["lockproof_lock_wait_seconds{lock=\"row\"} count == 20"]?.passed, true)
        XCTAssertEqual(byExpression["lockproof_lock_wait_seconds{lock=\"row\"} p(99) < 60s"]?.passed, true)
        // The pessimistic strategy never enters the retry wrapper: no sample, so it fails and says why.
        let vacuous = byExpression["lockproof_retry_exhausted_total count == 0"]
        XCTAssertEqual(vacuous?.passed, false)
        XCTAssertNil(vacuous?.observed)
        XCTAssertTrue(vacuous?.message.contains("recorded no sample") == true, vacuous?.message ?? "")
        XCTAssertEqual(byExpression["latency max < 0s"]?.passed, false)
        // Durations are shown with units, as the limit is written.
        let breaks = byExpression["latency max < 0s"]?.message ?? ""
        XCTAssertNotNil(breaks.range(of: #"^latency max = [0-9.]+(us|ms|s) breaks < 0s$"#, options: .regularExpression), breaks)
        XCTAssertTrue(byExpression["throughput count == 20"]?.message.hasSuffix("= 20 satisfies == 20") == true)
        XCTAssertFalse(result.passed, "a failed threshold fails the scenario though every check passed")
        XCTAssertTrue(result.checks.allSatisfy(\.passed))
        // 20 lock waits cannot carry a p(99) (it needs 200): judged, with a warning; counts get none.
        let short = byExpression["lockproof_lock_wait_seconds{lock=\"row\"} p(99) < 60s"]?.warning ?? ""
        XCTAssertTrue(short.contains("judged on 20 samples; a p(99) needs at least 200"), short)
        XCTAssertNil(byExpression["throughput count == 20"]?.warning)
        XCTAssertTrue(ReportWriter.summary(result).contains("  warning: 'p(99) < 60s'"))
    }

    /// The rule of the warning: 2 samples above the percentile. A run long enough gets none.
    func testAPercentileOnEnoughSamplesIsNotWarnedAbout() throws {
        XCTAssertEqual(
            [99, 95, 90, 50, 99.9, 100].map(Threshold.minimumSamples(forPercentile:)), [200, 40, 20, 4, 2000, 1])
        let result = try run(scenario(
            "charge-balance", "pessimistic", seed: "users: 4", workload: "virtual_users: 4, iterations: 10",
            thresholds: """
                  latency: ["p(95) < 60s", "p(99) < 60s", "med < 60s"]
                """))
        let warnings = Dictionary(uniqueKeysWithValues: result.thresholds.map { ($0.expression, $0.warning) })
        XCTAssertEqual(warnings["p(95) < 60s"]!, nil, "40 samples are enough for a p(95)")
        XCTAssertEqual(warnings["med < 60s"]!, nil)
        XCTAssertNotNil(warnings["p(99) < 60s"]!, "but not for a p(99)")
    }

    func testUnknownOperationsWidenTheMoneyBounds() throws {
        // A charge whose outcome the client never learned: the checker must accept both endings.
        let db = try TestServers.database()
        try Schema.reset(db)
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        try db.query("UPDATE users SET balance = 100 WHERE id = $1", [user])
        try db.query("INSERT INTO balance_ledger (user_id, delta, reason, reference) VALUES ($1, 100, 'charge', 'x')", [user])
        let unknown = HistoryEntry(
            client: 0, index: 0, operation: .charge, arguments: ["user": user, "amount": 100], items: nil, start: 0, end: 1,
            outcome: .unknown, reason: "connection_lost", result: nil)
        let scenario = try ScenarioParser.parse(scenario("charge-balance", "seed", seed: "users: 1", workload: "virtual_users: 1, iterations: 1"), file: "t")
        var initial = InitialState()
        initial.users = [user]
        initial.balances = [user: 0]
        let context = CheckContext(scenario: scenario, initial: initial, db: db, statistics: RunStatistics())
        let checker = checkers(for: scenario).first { $0.name == "money-conservation" }!
        checker.observe(unknown)
        let widened = try checker.check(context)
        XCTAssertTrue(widened.passed, "\(widened.violations)")
        let strict = try checkers(for: scenario).first { $0.name == "money-conservation" }!.check(context)
        XCTAssertEqual(strict.violations.map(\.name), ["balance-above-acknowledged", "charge-applied-twice"])
        XCTAssertTrue(strict.violations[0].firstExample.contains("balance 100, the history allows 0…0"), strict.violations[0].firstExample)
    }

    func testReportsCarryTheDocumentedKeys() throws {
        let directory = try temporaryFolder()
        let result = try run(
            scenario("issue-coupon", "seed", seed: "users: 5, coupon_quantity: 2", workload: "virtual_users: 5, iterations: 1, pick: per-client"),
            historyDirectory: directory)
        try ReportWriter.write(result, to: directory)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("t-issue-coupon-seed.json"))) as! [String: Any]
        for key in ["scenario", "case", "strategy", "expect", "passed", "checks", "thresholds", "operations", "latency_seconds", "throughput_per_second", "faults", "status"] {
            XCTAssertNotNil(json[key], "report lacks \(key)")
        }
        XCTAssertEqual((json["operations"] as? [String: Any])?["ok"] as? Int, 2)
        XCTAssertEqual((json["operations"] as? [String: Any])?["fail"] as? Int, 3)
        XCTAssertNotNil((json["latency_seconds"] as? [String: Any])?["p99"])
        let history = try String(contentsOf: directory.appendingPathComponent("t-issue-coupon-seed.history.jsonl"), encoding: .utf8)
        let lines = history.split(separator: "\n")
        XCTAssertEqual(lines.filter { !$0.contains("\"process\":") }.count, 5)
        // The seed takes the Redis lock for each issue: each hold's grant and release, from the lock code.
        XCTAssertEqual(lines.filter { $0.contains("\"process\":\"lock\"") && $0.contains("\"phase\":\"acquire\"") }.count, 5)
        XCTAssertEqual(lines.filter { $0.contains("\"process\":\"lock\"") && $0.contains("\"outcome\":\"released\"") }.count, 5)
        let junit = ReportWriter.junit([result])
        XCTAssertTrue(junit.contains("<testsuite name=\"t-issue-coupon-seed\""))
        XCTAssertTrue(junit.contains("failures=\"0\" errors=\"0\""))
        XCTAssertTrue(ReportWriter.verdictTable([result]).hasSuffix("1 passed, 0 failed, 0 errors"))
    }
}
