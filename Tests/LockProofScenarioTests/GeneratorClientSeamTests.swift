import Foundation
import LockProofCommerce
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// Jepsen's separation: a generator yields invocations (no connection in them), a `Client`
/// performs them (the in-process core here), the history records invocations and completions,
/// and the nemesis' fault windows are entries of the same history that checkers and the report read.
final class GeneratorClientSeamTests: XCTestCase {
    private func scenario(_ yaml: String) throws -> Scenario { try ScenarioParser.parse(yaml, file: "seam.yaml") }

    private func initial(users: [Int] = [11, 12, 13], products: [Int] = [21, 22, 23], orders: [Int] = [31, 32]) -> InitialState {
        var state = InitialState()
        state.users = users
        state.products = products
        state.orders = orders
        state.couponId = 41
        return state
    }

    func testTheGeneratorYieldsTheMixWithItsStrategiesAndTheSameDrawsForTheSameSeed() throws {
        let mixed = try scenario(
            """
            name: mix
            seed: {orders: 2}
            workload: {virtual_users: 2, iterations: 4, pick: random, random_seed: 5, mix: {charge: {weight: 1, strategy: naive}, pay: 1}}
            """)
        var first = OperationGenerator(client: 1, scenario: mixed, initial: initial())
        var again = OperationGenerator(client: 1, scenario: mixed, initial: initial())
        let drawn = (0..<4).map { first.next($0) }
        XCTAssertEqual(drawn, (0..<4).map { again.next($0) }, "a seeded generator draws the same operations")
        // Client 1's slots are 1, 3, 5, 7: with weights charge 1 and pay 1 they all fall on pay.
        XCTAssertEqual(drawn.map(\.operation), [.pay, .pay, .pay, .pay])
        var zero = OperationGenerator(client: 0, scenario: mixed, initial: initial())
        let charge = zero.next(0)
        XCTAssertEqual(charge.operation, .charge)
        XCTAssertEqual(charge.strategy, "naive", "each operation carries its strategy")
        XCTAssertTrue([11, 12, 13].contains(charge.arguments["user"]!))
        XCTAssertEqual(charge.arguments["amount"], mixed.workload.amount)
        XCTAssertTrue(drawn.allSatisfy { [31, 32].contains($0.arguments["order"]!) && $0.strategy == "seed" })
    }

    func testCreatedOrdersArePaidAsAFollowUpOnlyWhenTheCreateSucceeded() throws {
        let creating = try scenario(
            """
            name: create-pay
            case: create-order
            seed: {products: 3}
            workload: {virtual_users: 1, iterations: 1, pick: same, items: 2, pay_after_create: true}
            """)
        var generator = OperationGenerator(client: 0, scenario: creating, initial: initial())
        let create = generator.next(0)
        XCTAssertEqual(create.operation, .create)
        XCTAssertEqual(create.items?.map(\.productId), [21, 22])
        let created = Completion(outcome: .success, reason: nil, result: ["order": 77, "total": 10])
        XCTAssertEqual(
            generator.followUp(after: create, completion: created),
            Invocation(operation: .pay, strategy: "seed", arguments: ["order": 77]))
        let refused = Completion(outcome: .rejected, reason: "insufficient_stock", result: nil)
        XCTAssertNil(generator.followUp(after: create, completion: refused))
        XCTAssertNil(generator.followUp(after: created.asInvocationOf(.pay), completion: created), "a payment has no follow-up")
    }

    func testTheInProcessClientPerformsInvocationsAndTheHistoryRecordsTheirCompletions() throws {
        try TestServers.reset()
        let db = try TestServers.database()
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        let client = InProcessClient { try TestServers.client() }
        try client.open()
        defer { client.close() }
        let charge = Invocation(operation: .charge, strategy: "seed", arguments: ["user": user, "amount": 500])
        let done = client.invoke(charge)
        XCTAssertEqual(done.outcome, .success)
        XCTAssertEqual(done.result?["balance"], 500)
        let missing = client.invoke(Invocation(operation: .pay, strategy: "seed", arguments: ["order": 999_999]))
        XCTAssertEqual(missing.outcome, .rejected)
        XCTAssertEqual(missing.historyOutcome, .fail)
        XCTAssertEqual(missing.reason, "not_found")

        let entry = HistoryEntry(client: 3, index: 0, charge, start: 1, end: 2, done)
        XCTAssertEqual(entry.operation, .charge)
        XCTAssertEqual(entry.outcome, .ok)
        XCTAssertEqual(entry.result?["balance"], 500)
        // The history's JSON is unchanged: the operation is its name.
        let json = String(decoding: try JSONEncoder().encode(entry), as: UTF8.self)
        XCTAssertTrue(json.contains("\"operation\":\"charge\""), json)
    }

    func testNemesisEntriesShareTheHistoryFileAndGiveCheckersTheFaultWindows() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-seam-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("n.history.jsonl")
        let watcher = FaultWatcher()
        let recorder = try HistoryRecorder(checkers: [watcher], file: file)
        recorder.record(
            HistoryEntry(
                client: 0, index: 0, operation: .charge, arguments: ["user": 1, "amount": 1], items: nil, start: 0.1, end: 0.2,
                outcome: .ok, reason: nil, result: nil))
        let pause = FaultRecord(kind: "redis-pause", start: 0.5, end: 1.5, targets: ["redis"], hits: nil, note: nil, error: nil)
        let never = FaultRecord(kind: "pg-terminate", start: 9, end: nil, targets: [], hits: nil, note: nil, error: "never struck")
        for entry in [pause, never].flatMap(NemesisEntry.entries(of:)) { recorder.record(entry) }
        XCTAssertNil(recorder.finish())

        XCTAssertEqual(watcher.seen.map(\.phase), [.start, .end, .start], "every checker sees the nemesis")
        let windows = [FaultWindow(fault: "redis-pause", start: 0.5, end: 1.5), FaultWindow(fault: "pg-terminate", start: 9, end: nil)]
        XCTAssertEqual(recorder.faultWindows, windows)
        XCTAssertTrue(windows[0].contains(1.0))
        XCTAssertFalse(windows[0].contains(0.2))
        // The file holds both processes; each reader takes its own lines.
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[1].contains("\"process\":\"nemesis\""), String(lines[1]))
        XCTAssertEqual(try readHistory(file).count, 1, "operations only")
        XCTAssertEqual(FaultWindow.windows(try readNemesisEntries(file)), windows)
        XCTAssertThrowsError(try JSONDecoder().decode(NemesisEntry.self, from: Data(lines[0].utf8)), "an operation is no nemesis entry")
    }

    func testARunWithAFaultWritesItsWindowToTheHistoryAndTheCheckersContext() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lp-seam-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let faulty = try scenario(
            """
            name: seam-gateway
            case: process-payment
            seed: {users: 2, balance: 1000000, products: 2, price: 10, stock: 100000, orders: 400}
            workload: {virtual_users: 2, iterations: 200, start: barrier, pick: per-operation}
            faults:
              - {kind: gateway-failure, start: 0s, duration: 60s, failure_rate: 0.5}
            """)
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        runner.historyDirectory = folder
        let result = try runner.run(faulty)
        // Whatever the fault struck (the verdict is the fault tests' business), its window is in the history.
        XCTAssertEqual(result.faults.count, 1, ReportWriter.summary(result))
        let windows = FaultWindow.windows(try readNemesisEntries(try XCTUnwrap(result.historyFile)))
        XCTAssertEqual(windows.map(\.fault), ["gateway-failure"])
        let window = try XCTUnwrap(windows.first)
        XCTAssertEqual(window.start, try XCTUnwrap(result.faults.first).start)
        XCTAssertEqual(window.end, result.faults.first?.end)
        XCTAssertGreaterThan(try readHistory(try XCTUnwrap(result.historyFile)).count, 0)
    }
}

extension GeneratorClientSeamTests {
    /// docs/schemas/history-entry.schema.json names every operation of the descriptors: a new
    /// case's operation that the schema lacks would fail `make verify`'s schema check; fail here first.
    func testTheHistorySchemaNamesEveryOperation() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/schemas/history-entry.schema.json")
        let schema = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let defs = try XCTUnwrap(schema["$defs"] as? [String: Any])
        let operation = try XCTUnwrap(defs["operation"] as? [String: Any])
        let properties = try XCTUnwrap(operation["properties"] as? [String: Any])
        let names = try XCTUnwrap((properties["operation"] as? [String: Any])?["enum"] as? [String])
        XCTAssertEqual(Set(names), Set(OperationName.allCases.map(\.rawValue)))
        let nemesis = try XCTUnwrap(defs["nemesis"] as? [String: Any])
        XCTAssertEqual(
            Set(try XCTUnwrap(nemesis["properties"] as? [String: Any]).keys),
            ["process", "phase", "fault", "time_seconds", "targets", "hits", "note", "error"], "NemesisEntry's keys")
        let lock = try XCTUnwrap(defs["lock"] as? [String: Any])
        let lockKeys = Set(try XCTUnwrap(lock["properties"] as? [String: Any]).keys)
        XCTAssertEqual(
            lockKeys,
            ["process", "phase", "client", "key", "token", "fencing_token", "lease_ms", "time_seconds", "requested_seconds", "renew", "renewed_seconds", "outcome"],
            "LockEntry's keys")
        // Both phases of a real entry carry only keys the schema names.
        let encoder = JSONEncoder()
        for entry in [
            LockEntry(
                phase: .acquire, client: 1, key: "lockproof:lock:user:3", token: "ab", fencingToken: 7, leaseMilliseconds: 200, time: 0.5,
                requested: 0.49, renew: true),
            LockEntry(
                phase: .release, client: 1, key: "lockproof:lock:user:3", token: "ab", fencingToken: 7, leaseMilliseconds: 200, time: 0.7,
                renewed: 0.6, outcome: .lost),
        ] {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(entry)) as? [String: Any])
            XCTAssertTrue(Set(object.keys).isSubset(of: lockKeys), "\(object.keys)")
            XCTAssertEqual(object["process"] as? String, "lock")
            XCTAssertEqual(try JSONDecoder().decode(LockEntry.self, from: encoder.encode(entry)), entry)
        }
    }
}

/// A checker that keeps the nemesis' entries it is handed.
private final class FaultWatcher: Checker {
    let name = "fault-watcher"
    let operations: Set<OperationName> = [.charge]
    var seen: [NemesisEntry] = []
    var retainedRecords: Int { seen.count }
    func observe(_ entry: HistoryEntry) {}
    func observe(_ entry: NemesisEntry) { seen.append(entry) }
    func check(_ context: CheckContext) throws -> CheckResult {
        CheckResult(name: name, passed: true, violations: [], summary: "\(context.faultWindows.count) fault windows")
    }
}

extension Completion {
    fileprivate func asInvocationOf(_ operation: OperationName) -> Invocation {
        Invocation(operation: operation, strategy: "seed", arguments: result ?? [:])
    }
}
