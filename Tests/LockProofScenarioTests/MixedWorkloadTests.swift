import Foundation
import LockProofCommerce
import LockProofScenario
import LockProofTestSupport
import XCTest

/// Runs a shipped scenario (`Scenarios/NAME.yaml`) against the test servers.
func runShippedScenario(_ name: String) throws -> ScenarioResult {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Scenarios/\(name).yaml").standardized.path
    let runner = ScenarioRunner(
        configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
    return try runner.run(try ScenarioParser.load(path: path))
}

/// Mixed workloads and real races, run against the real servers.
final class MixedWorkloadTests: XCTestCase {
    private let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Scenarios").standardized

    private func run(_ scenario: Scenario) throws -> ScenarioResult {
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-mixed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        runner.historyDirectory = folder
        return try runner.run(scenario)
    }

    /// The history the run streamed to its file.
    private func history(_ result: ScenarioResult) throws -> [HistoryEntry] {
        let text = try String(contentsOf: try XCTUnwrap(result.historyFile), encoding: .utf8)
        // The operations' lines (the lock holds' and the nemesis' carry a process).
        return try text.split(separator: "\n").filter { !$0.contains("\"process\":") }
            .map { try JSONDecoder().decode(HistoryEntry.self, from: Data($0.utf8)) }
    }

    private func shipped(_ name: String) throws -> Scenario {
        try ScenarioParser.load(path: scenarios.appendingPathComponent(name + ".yaml").path)
    }

    /// Before, clients i and i + 50 got the same operation (slot parity): nothing raced.
    func testTheRaceScenarioRacesCompleteAgainstCancelOnEveryOrder() throws {
        let result = try run(try shipped("order-state-race-complete-cancel"))
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        let byOrder = Dictionary(grouping: try history(result), by: { $0.arguments["order"]! })
        XCTAssertEqual(byOrder.count, 50)
        for (order, entries) in byOrder {
            XCTAssertEqual(entries.map(\.operation).sorted(), [.cancel, .complete], "order \(order)")
            XCTAssertEqual(entries.filter { $0.outcome == .ok }.count, 1, "order \(order): one winner")
        }
    }

    /// `per-operation` keeps the operations of a mix apart: each works on an order of its own.
    func testPerOperationPickGivesEveryOperationItsOwnOrder() throws {
        let scenario = try ScenarioParser.parse(
            """
            name: apart
            case: order-state
            seed: {orders: 40}
            workload: {virtual_users: 8, iterations: 5, pick: per-operation, mix: {complete: 1, cancel: 1}}
            """, file: "t.yaml")
        let result = try run(scenario)
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        XCTAssertEqual(Set(try history(result).map { $0.arguments["order"]! }).count, 40)
        XCTAssertEqual(result.count(.ok), 40, "nothing raced")
    }

    /// 15 charges and 15 payments of 7,000 on one user with 100,000 → 100,000 exactly.
    func testChargesAndPaymentsOnOneUserConserveMoneyExactly() throws {
        let result = try run(try shipped("mixed-charge-pay-seed"))
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        let entries = try history(result)
        XCTAssertEqual(entries.filter { $0.operation == .charge && $0.outcome == .ok }.count, 15)
        XCTAssertEqual(entries.filter { $0.operation == .pay && $0.outcome == .ok }.count, 15)
        let balance = try TestServers.database().query("SELECT balance FROM users").int(0, 0)
        XCTAssertEqual(balance, 100_000)
        XCTAssertEqual(Set(result.checks.map(\.name)), ["money-conservation", "stock-conservation", "compensation", "lock-exclusivity", "no-deadlock"])
    }

    /// A naive charge overwrites what a concurrent payment took: caught on the combined history.
    func testANaiveChargeInAMixIsCaught() throws {
        let result = try run(try shipped("mixed-charge-pay-naive-charge"))
        XCTAssertTrue(result.violationCaught, ReportWriter.summary(result))
        XCTAssertFalse(result.checks.first { $0.name == "money-conservation" }!.passed)
    }

    /// Each deadlock-free alone, the seed's create and pay deadlock on shared users and products:
    /// products → user (the order's foreign key) against user → products. Only a mix shows it.
    func testTheSeedsCreateAndPayDeadlockEachOtherOnSharedData() throws {
        let result = try runShippedScenario("mixed-create-pay-seed-deadlock")
        XCTAssertFalse(result.checks.first { $0.name == "no-deadlock" }!.passed, ReportWriter.summary(result))
        for name in ["money-conservation", "stock-conservation", "order-creation"] {
            XCTAssertTrue(result.checks.first { $0.name == name }!.passed, "\(name): the victims roll back\n\(ReportWriter.summary(result))")
        }
    }

    /// Weights of a billion must cost nothing (expanded, they took 50 MB per virtual user and more).
    func testHugeWeightsRunWithoutExpandingThem() throws {
        let scenario = try ScenarioParser.parse(
            """
            name: huge-weights
            case: order-state
            seed: {orders: 4}
            workload: {virtual_users: 2, duration: 200ms, pick: random, mix: {complete: 1000000000, cancel: 1000000000}}
            """, file: "t.yaml")
        let result = try run(scenario)
        XCTAssertGreaterThan(result.operations.total, 0)
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
    }
}

/// `seed.cart_quantity`: peer suites start a cart line at 1.
final class CartOpeningQuantityTests: XCTestCase {
    func testALineOpeningAtOneEndsAtOnePlusEveryAcknowledgedAdd() throws {
        let result = try runShippedScenario("cart-quantity-peer-line-at-one")
        XCTAssertTrue(result.passed, ReportWriter.summary(result))
        let acknowledged = result.operations.ok
        XCTAssertEqual(try TestServers.database().query("SELECT quantity FROM cart_items").int(0, 0), 1 + acknowledged)
    }
}
