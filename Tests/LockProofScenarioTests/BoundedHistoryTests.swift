import Foundation
import LockProofCommerce
@testable import LockProofScenario
import XCTest

/// A run of any length in bounded memory: the history goes to its file through a fixed buffer,
/// checkers keep per-entity state, a client facing a dead server backs off.
final class BoundedHistoryTests: XCTestCase {
    private func entry(_ n: Int, _ operation: OperationName, _ outcome: HistoryOutcome, reason: String? = nil) -> HistoryEntry {
        let arguments: [String: Int]
        var result: [String: Int]?
        var items: [OrderItemRequest]?
        switch operation {
        case .charge: arguments = ["user": n % 4 + 1, "amount": 10]
        case .issue: arguments = ["user": n % 4 + 1, "coupon": 1]
        case .add: arguments = ["user": n % 4 + 1, "product": 1, "quantity": 1]
        case .create:
            // Every created order is an entity of its own, in the database too; a fixed set here.
            arguments = ["user": n % 4 + 1]
            items = [OrderItemRequest(productId: 1, quantity: 1)]
            if outcome == .ok { result = ["order": n % 4 + 1, "total": 10] }
        default: arguments = ["order": n % 4 + 1]
        }
        return HistoryEntry(
            client: n % 8, index: n, operation: operation, arguments: arguments, items: items, start: Double(n), end: Double(n) + 0.5,
            outcome: outcome, reason: reason ?? (outcome == .ok ? nil : "conflict"), result: result)
    }

    private func everyChecker() throws -> [any Checker] {
        var all: [String: any Checker] = [:]
        for (caseName, extra) in [("charge-balance", ""), ("process-payment", "orders: 4"), ("issue-coupon", ""), ("create-order", ""),
                                  ("order-state", "orders: 4"), ("cart-quantity", "")] {
            let scenario = try ScenarioParser.parse(
                "name: b\ncase: \(caseName)\nstrategy: seed\nseed: {\(extra)}\nworkload: {virtual_users: 1, iterations: 1}\n", file: "b.yaml")
            for checker in checkers(for: scenario) where all[checker.name] == nil { all[checker.name] = checker }
        }
        return Array(all.values)
    }

    private let operations = OperationName.allCases
    private let outcomes: [HistoryOutcome] = [.ok, .fail, .unknown]

    func testCheckerStateDoesNotGrowWithTheNumberOfOperations() throws {
        let checkers = try everyChecker()
        XCTAssertEqual(checkers.count, 9, "every checker is covered")
        let recorder = try HistoryRecorder(checkers: checkers, file: nil)
        var n = 0
        func feed(_ count: Int) {
            for _ in 0..<count {
                recorder.record(entry(n, operations[n % operations.count], outcomes[(n / operations.count) % 3],
                                      reason: n % 97 == 0 ? "deadlock" : nil))
                n += 1
            }
        }
        feed(1_000)
        let early = Dictionary(uniqueKeysWithValues: checkers.map { ($0.name, $0.retainedRecords) })
        feed(100_000)
        for checker in checkers {
            XCTAssertEqual(checker.retainedRecords, early[checker.name], "\(checker.name) holds more after 101,000 operations on the same entities")
        }
        XCTAssertEqual(recorder.operations.total, 101_000)
    }

    func testTheHistoryStreamsToItsFileAndIsNotKeptInMemory() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("h.history.jsonl")
        let recorder = try HistoryRecorder(checkers: [], file: file)
        var largestBuffer = 0
        for n in 0..<50_000 {
            recorder.record(entry(n, .charge, n % 10 == 0 ? .fail : .ok))
            largestBuffer = max(largestBuffer, recorder.bufferedBytes)
        }
        // On disk while the run goes on, not at its end.
        let written = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as! Int
        XCTAssertGreaterThan(written, 4_000_000, "most of 50,000 entries are on disk before the run ends")
        XCTAssertLessThanOrEqual(largestBuffer, 1 << 16 + 1024, "at most one buffer of history in memory")
        XCTAssertNil(recorder.finish())
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 50_000)
        let decoded = try JSONDecoder().decode(HistoryEntry.self, from: Data(lines[3].utf8))
        XCTAssertEqual(decoded, entry(3, .charge, .ok), "every field of an entry survives the file")
        XCTAssertEqual(recorder.operations.fail, 5_000)
        XCTAssertEqual(recorder.operations.reasons, ["conflict": 5_000])
        recorder.record(entry(50_000, .charge, .ok))
        XCTAssertEqual(recorder.operations.total, 50_000, "a late entry after the end is dropped, not written to a closed file")
    }

    func testRepeatedIdenticalFailuresAgainstADeadServerBackOff() {
        var backoff = FailureBackoff()
        let refused = entry(0, .charge, .fail, reason: "redis_error")
        let pauses = (0..<30).map { _ in backoff.delay(after: refused) }
        XCTAssertEqual(Array(pauses.prefix(FailureBackoff.tolerated)), [0, 0, 0], "a few failures are retried at once")
        XCTAssertGreaterThan(pauses[FailureBackoff.tolerated], 0)
        XCTAssertEqual(pauses.last, FailureBackoff.longestPause, "the pause grows to its bound and no further")
        XCTAssertEqual(pauses.max(), FailureBackoff.longestPause)
        XCTAssertTrue(zip(pauses, pauses.dropFirst()).allSatisfy { $0 <= $1 }, "\(pauses)")
        XCTAssertEqual(backoff.delay(after: entry(1, .charge, .ok)), 0, "a success resets it")
        XCTAssertEqual(backoff.delay(after: refused), 0)
        // Contention and business refusals are what scenarios measure: they never pause.
        var contention = FailureBackoff()
        for reason in ["sold_out", "conflict", "deadlock", "redis_lock_timeout", "insufficient_balance"] {
            XCTAssertEqual((0..<10).map { _ in contention.delay(after: entry(0, .issue, .fail, reason: reason)) }.max(), 0, reason)
        }
    }
}
