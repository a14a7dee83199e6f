import Foundation
import LockProofCommerce
import LockProofScenario
import LockProofTestSupport
import XCTest

@testable import LockProofBench

/// On a fast machine the quick preset's order-state cell "reached slot 38080 of a pool of 20000
/// orders" and the bench exited 1. A pool far too small for this machine stands in for that: the
/// cell grows it, runs again, and is measured, never an error.
final class BenchPoolGrowthTests: XCTestCase {
    func testACellThatOutrunsItsPoolGrowsItAndIsMeasured() throws {
        var preset = BenchPreset.quick
        preset.clientCounts = [2]
        preset.repetitions = 1
        preset.ceilingRepetitions = 1
        preset.seconds = 0.2
        preset.strategies = ["seed"]
        preset.stateOrdersPerSecond = 20  // 20 orders for a 1 s run: any machine outruns it
        let runner = BenchRunner(
            configuration: TestServers.configuration, preset: preset,
            cases: BenchCase.all.filter { $0.caseName == .orderState })
        var lines: [String] = []
        runner.log = { lines.append($0) }
        let results = try runner.run()

        let cell = try XCTUnwrap(results.cell(.orderState, "seed", .spread, 2))
        XCTAssertEqual(cell.errors, [], lines.joined(separator: "\n"))
        XCTAssertEqual(cell.runs.count, 1, "the outrun run is dropped, the rerun kept")
        XCTAssertTrue(cell.invariantHeld)
        XCTAssertEqual(cell.ceilingRuns.count, 1, "the ceiling ran on the grown pool")
        let growth = try XCTUnwrap(lines.first { $0.contains("the pool grows to") }, lines.joined(separator: "\n"))
        XCTAssertTrue(growth.hasPrefix("bench: order-state/seed/spread/c2 reached slot "), growth)
        XCTAssertTrue(growth.contains(" of a pool of 20 orders: the pool grows to "), growth)
        let reached = try XCTUnwrap(Int(growth.split(separator: " ")[4]))
        XCTAssertGreaterThan(reached, 20)
        // The kept run stayed inside its grown pool: one that had not is an error of the cell (above).
        XCTAssertFalse(results.hadErrors, "\(results.errors)")
    }
}
