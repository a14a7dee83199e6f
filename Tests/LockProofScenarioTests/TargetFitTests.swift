import Foundation
import LockProofScenario
import XCTest

/// Which shipped scenarios run through targets/shop.yaml, and what is reported as not checked.
final class TargetFitTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func scenario(_ name: String) throws -> Scenario {
        try ScenarioParser.load(path: repository.appendingPathComponent("Scenarios/\(name).yaml").path)
    }

    private func shop() throws -> Target {
        try TargetParser.load(path: repository.appendingPathComponent("targets/shop.yaml").path)
    }

    func testTheSeedChargeRunsThroughShopWithItsInProcessThresholdsNotChecked() throws {
        let fit = try shop().fit(try scenario("charge-balance-seed"))
        XCTAssertTrue(fit.runnable, "\(fit.refusals)")
        XCTAssertEqual(fit.uncheckedCheckers, [])
        XCTAssertTrue(fit.uncheckedThresholds.allSatisfy { !$0.hasPrefix("latency") && !$0.hasPrefix("throughput") })
    }

    func testInProcessFaultsAndTheSimulatedGatewayAreRefusedWithTheReason() throws {
        let paused = try shop().fit(try scenario("fault-client-pause-charge-seed"))
        XCTAssertEqual(paused.refusals, ["fault client-pause strikes inside LockProof's own process; an HTTP target cannot be struck by it"])
        let gateway = try shop().fit(try scenario("process-payment-gateway-down"))
        XCTAssertTrue(gateway.refusals.contains { $0.hasPrefix("workload.gateway configures LockProof's simulated payment gateway") })
        // A server fault strikes the servers, whoever uses them: not refused.
        XCTAssertTrue(try shop().fit(try scenario("fault-redis-down-charge-pay-seed")).refusals.allSatisfy { !$0.contains("redis-down") })
    }

    func testPaymentsThroughShopLeaveCompensationNotChecked() throws {
        let fit = try shop().fit(try scenario("process-payment-peer-one-order"))
        XCTAssertTrue(fit.runnable, "\(fit.refusals)")
        XCTAssertEqual(fit.uncheckedCheckers, ["compensation: the target maps no state.compensations"])
    }

    func testDailySpendRunsThroughShopWithItsLimitChecked() throws {
        let fit = try shop().fit(try scenario("daily-spend-seed"))
        XCTAssertTrue(fit.runnable, "\(fit.refusals)")
        XCTAssertEqual(fit.uncheckedCheckers, [])
        // Without the spends query, the daily-limit checker is reported as not checked, never passed.
        let text = try String(contentsOf: repository.appendingPathComponent("targets/shop.yaml"), encoding: .utf8)
        let line = try XCTUnwrap(text.range(of: "  spends: SELECT member_id AS \"user\", spent_on AS day, price AS amount FROM expense\n"))
        var withoutSpends = text
        withoutSpends.removeSubrange(line)
        let unmapped = try TargetParser.parse(withoutSpends, file: "shop-without-spends.yaml").fit(try scenario("daily-spend-seed"))
        XCTAssertEqual(unmapped.uncheckedCheckers, ["daily-limit: the target maps no state.spends"])
    }

    func testAMissingOperationIsNamed() throws {
        let text = try String(contentsOf: repository.appendingPathComponent("targets/shop.yaml"), encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "  issue:\n"))
        let end = try XCTUnwrap(text.range(of: "  create:\n"))
        var withoutIssue = text
        withoutIssue.removeSubrange(start.lowerBound..<end.lowerBound)
        let target = try TargetParser.parse(withoutIssue, file: "shop-without-issue.yaml")
        let fit = target.fit(try scenario("issue-coupon-seed"))
        XCTAssertEqual(fit.refusals, ["the target shop has no issue (shop-without-issue.yaml: operations)"])
    }

    func testShopFitsEveryShippedScenarioButThoseThatReachIntoLockProof() throws {
        let target = try shop()
        let names = try FileManager.default.contentsOfDirectory(atPath: repository.appendingPathComponent("Scenarios").path)
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        var runnable: [String] = []
        for name in names {
            let fit = target.fit(try scenario(name))
            if fit.runnable {
                runnable.append(name)
            } else {
                // Every refusal is a fault that strikes inside LockProof or its simulated gateway:
                // shop implements every operation, so none is refused for a missing one.
                XCTAssertTrue(
                    fit.refusals.allSatisfy { $0.hasPrefix("fault ") || $0.hasPrefix("workload.gateway") },
                    "\(name): \(fit.refusals)")
            }
        }
        XCTAssertGreaterThan(runnable.count, names.count / 2, "runnable through shop: \(runnable)")
        print("shop.yaml fits \(runnable.count) of \(names.count) shipped scenarios")
    }
}
