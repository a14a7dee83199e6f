import Foundation
import LockProofCommerce
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// The lock-exclusivity checker handed lock holds built by hand: serial holds recorded out of
/// order and leases that ran out pass; two holders at once fail outside a fault window and are
/// counted apart inside one; its state stays per key.
final class LockExclusivityCheckerTests: XCTestCase {
    private var db: PostgresConnection!
    private let key = "balance:user:1"

    override func setUpWithError() throws {
        db = try TestServers.database()
    }

    private func acquire(
        _ client: Int, _ token: String, at time: Double, requested: Double? = nil, lease: Int = 100, renew: Bool = true, key: String? = nil
    ) -> LockEntry {
        LockEntry(
            phase: .acquire, client: client, key: key ?? self.key, token: token, fencingToken: Int64(client), leaseMilliseconds: lease,
            time: time, requested: requested ?? time - 0.0005, renew: renew)
    }

    private func release(
        _ client: Int, _ token: String, at time: Double, _ outcome: LockEntry.ReleaseOutcome = .released, lease: Int = 100, key: String? = nil
    ) -> LockEntry {
        LockEntry(
            phase: .release, client: client, key: key ?? self.key, token: token, fencingToken: Int64(client), leaseMilliseconds: lease,
            time: time, outcome: outcome)
    }

    private func check(_ entries: [LockEntry], windows: [FaultWindow] = [], checker: LockExclusivityChecker = LockExclusivityChecker()) throws -> CheckResult {
        let scenario = try ScenarioParser.parse(
            "name: constructed\ncase: charge-balance\nstrategy: seed\nworkload: {virtual_users: 1, iterations: 1}\n", file: "constructed.yaml")
        for entry in entries { checker.observe(entry) }
        let result = try checker.check(
            CheckContext(scenario: scenario, initial: InitialState(), db: db, statistics: RunStatistics(), faultWindows: windows))
        XCTAssertEqual(result.passed, result.violations.isEmpty)
        return result
    }

    func testItJudgesEveryScenarioWhoseStrategyTakesTheRedisLockAndNoOther() throws {
        func names(_ strategy: String) throws -> [String] {
            checkers(
                for: try ScenarioParser.parse(
                    "name: c\ncase: charge-balance\nstrategy: \(strategy)\nworkload: {virtual_users: 1, iterations: 1}\n", file: "c.yaml")
            ).map(\.name)
        }
        for strategy in ["seed", "redis-lock", "redis-lock-fenced"] { XCTAssertTrue(try names(strategy).contains("lock-exclusivity"), strategy) }
        for strategy in ["atomic", "pessimistic", "naive"] { XCTAssertFalse(try names(strategy).contains("lock-exclusivity"), strategy) }
    }

    /// Serial holds whose releases were recorded after the next grant (the history records a
    /// release once Redis answered it, timestamped when it was sent): no overlap.
    func testSerialHoldsRecordedOutOfOrderPass() throws {
        let result = try check([
            acquire(0, "a", at: 0.010),
            acquire(1, "b", at: 0.0502),  // granted after a's release was sent (0.050), recorded before it
            release(0, "a", at: 0.050),
            acquire(2, "c", at: 0.0901),
            release(1, "b", at: 0.090),
            release(2, "c", at: 0.120),
        ])
        XCTAssertTrue(result.passed, "\(result.violations)")
        XCTAssertTrue(result.summary.contains("3 Redis lock holds of 1 keys"), result.summary)
    }

    /// A lease that ran out under its holder is a lost lock, not two holders: the lost hold ends
    /// at its lease (requested + 100 ms), before the next grant.
    func testALeaseThatRanOutIsALostLockNotTwoHolders() throws {
        let result = try check([
            acquire(0, "a", at: 0.0105, requested: 0.010),
            acquire(1, "b", at: 0.1106, requested: 0.1101),
            release(0, "a", at: 0.160, .lost),
            release(1, "b", at: 0.200, .lost),
        ])
        XCTAssertTrue(result.passed, "\(result.violations)")
        XCTAssertTrue(result.summary.contains("2 lost"), result.summary)
    }

    /// Negative control: b was granted while a's lock was still a's (its release found its token).
    /// Client 1 takes the lock 1.030-1.040 s while client 0 holds it 1.010-1.050 s.
    private var twoOverlappingHolds: [LockEntry] {
        [acquire(0, "a", at: 1.010), acquire(1, "b", at: 1.030), release(1, "b", at: 1.040), release(0, "a", at: 1.050)]
    }

    func testTwoHoldersOutsideAFaultWindowFail() throws {
        let entries = twoOverlappingHolds
        let result = try check(entries)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.violations.map(\.name), ["two-holders-outside-fault-window"])
        XCTAssertEqual(result.violations.first?.count, 1)
        XCTAssertTrue(result.violations[0].firstExample.contains("client 0"), result.violations[0].firstExample)
        XCTAssertTrue(result.violations[0].firstExample.contains("client 1"), result.violations[0].firstExample)

        // The same holds during a failover: expected, counted apart, not a failure.
        let inside = try check(entries, windows: [FaultWindow(fault: "redis-failover", start: 1.0, end: 1.02)])
        XCTAssertTrue(inside.passed, "\(inside.violations)")
        XCTAssertTrue(inside.summary.contains("0 two-holder overlaps outside fault windows, 1 inside"), inside.summary)
        // A fault that ended before the first hold began does not excuse it.
        let before = try check(entries, windows: [FaultWindow(fault: "redis-pause", start: 0.2, end: 0.9)])
        XCTAssertEqual(before.violations.map(\.name), ["two-holders-outside-fault-window"])
    }

    /// A strike that starts and ends at one instant (a `pg-terminate` that found its session at
    /// once) is a window of no length, read from the nemesis' entries as the run reads them: it
    /// excuses nothing after it (issue 21: its end was sorted before its start, dropped, and the
    /// window never ended, so every later overlap counted as expected).
    func testAnInstantStrikeExcusesNoLaterOverlap() throws {
        let entries = twoOverlappingHolds
        let strikes = [0.2, 0.5].map { FaultRecord(kind: "pg-terminate", start: $0, end: $0, targets: ["session"], hits: 1, note: nil, error: nil) }
        let windows = FaultWindow.windows(strikes.flatMap(NemesisEntry.entries(of:)))
        XCTAssertEqual(windows, [FaultWindow(fault: "pg-terminate", start: 0.2, end: 0.2), FaultWindow(fault: "pg-terminate", start: 0.5, end: 0.5)])
        XCTAssertEqual(try check(entries, windows: windows).violations.map(\.name), ["two-holders-outside-fault-window"])
        // A window that ends as the next one of the same fault starts keeps its own end.
        let back = [FaultRecord(kind: "redis-pause", start: 0.1, end: 0.3, targets: [], hits: nil, note: nil, error: nil),
                    FaultRecord(kind: "redis-pause", start: 0.3, end: 0.4, targets: [], hits: nil, note: nil, error: nil)]
        XCTAssertEqual(
            FaultWindow.windows(back.flatMap(NemesisEntry.entries(of:))),
            [FaultWindow(fault: "redis-pause", start: 0.1, end: 0.3), FaultWindow(fault: "redis-pause", start: 0.3, end: 0.4)])
    }

    /// A lease of fixed length (no watchdog) ends with it even when the release says it was still
    /// there; renewed, a confirmed release proves the hold up to it.
    func testAFixedLeaseEndsWithItsLease() throws {
        func entries(renew: Bool) -> [LockEntry] {
            [
                acquire(0, "a", at: 0.0105, requested: 0.010, renew: renew),
                acquire(1, "b", at: 0.1106, requested: 0.1101, renew: renew),
                release(0, "a", at: 0.160),
                release(1, "b", at: 0.200),
            ]
        }
        XCTAssertTrue(try check(entries(renew: false)).passed)
        XCTAssertEqual(try check(entries(renew: true)).violations.map(\.name), ["two-holders-outside-fault-window"])
    }

    /// A lost hold still counts up to its lease: b granted 30 ms into a's 100 ms lease overlaps it
    /// (Redis lost the key without the lease running out: restarted, failed over).
    func testALostHoldOverlapsUpToItsLease() throws {
        let result = try check([
            acquire(0, "a", at: 0.0105, requested: 0.010),
            acquire(1, "b", at: 0.040),
            release(0, "a", at: 0.060, .lost),
            release(1, "b", at: 0.070),
        ])
        XCTAssertEqual(result.violations.map(\.name), ["two-holders-outside-fault-window"])
    }

    /// A renewal Redis confirmed runs a lost hold's lease on from when it was sent: b granted
    /// inside it overlaps a (a failover or a restart lost the key, not the lease).
    func testARenewalRunsTheLeaseOn() throws {
        func entries(renewed: Double?) -> [LockEntry] {
            [
                acquire(0, "a", at: 0.0105, requested: 0.010),
                acquire(1, "b", at: 0.150),
                LockEntry(
                    phase: .release, client: 0, key: key, token: "a", fencingToken: 0, leaseMilliseconds: 100, time: 0.200, renewed: renewed,
                    outcome: .lost),
                release(1, "b", at: 0.210),
            ]
        }
        XCTAssertTrue(try check(entries(renewed: nil)).passed, "the lease set at 0.010 ran out before 0.150")
        XCTAssertEqual(try check(entries(renewed: 0.080)).violations.map(\.name), ["two-holders-outside-fault-window"])
    }

    /// A hold the run ended before it was released lasts until its lease could have run out.
    func testAHoldNeverReleasedLastsUntilItsLease() throws {
        let overlapping = try check([acquire(0, "a", at: 0.0105, requested: 0.010), acquire(1, "b", at: 0.050), release(1, "b", at: 0.060)])
        XCTAssertEqual(overlapping.violations.map(\.name), ["two-holders-outside-fault-window"])
        let after = try check([acquire(0, "a", at: 0.0105, requested: 0.010), acquire(1, "b", at: 0.111), release(1, "b", at: 0.120)])
        XCTAssertTrue(after.passed, "\(after.violations)")
    }

    /// Holds of different keys never overlap each other.
    func testKeysAreJudgedApart() throws {
        let result = try check([
            acquire(0, "a", at: 0.010, key: "balance:user:1"),
            acquire(1, "b", at: 0.020, key: "balance:user:2"),
            release(0, "a", at: 0.050, key: "balance:user:1"),
            release(1, "b", at: 0.060, key: "balance:user:2"),
        ])
        XCTAssertTrue(result.passed, "\(result.violations)")
    }

    /// Per key: the open holds and the last few closed ones, however many holds the run had.
    func testStateStaysPerKey() throws {
        let checker = LockExclusivityChecker()
        var time = 0.0
        for index in 0..<20_000 {
            let key = "balance:user:\(index % 3)"
            let token = "t\(index)"
            checker.observe(acquire(index % 7, token, at: time + 0.0001, key: key))
            checker.observe(release(index % 7, token, at: time + 0.0005, key: key))
            time += 0.001
        }
        XCTAssertLessThanOrEqual(checker.retainedRecords, 3 * LockExclusivityChecker.recentLimit)
        let result = try check([], checker: checker)
        XCTAssertTrue(result.passed, "\(result.violations)")
    }
}
