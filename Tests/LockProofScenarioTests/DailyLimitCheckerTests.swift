import Foundation
import LockProofCommerce
import LockProofPostgres
@testable import LockProofScenario
import LockProofTestSupport
import XCTest

/// The daily-limit checker handed histories and database states built by hand to break its
/// invariant in each way it names; each test first shows it passing on the correct state.
final class DailyLimitCheckerTests: XCTestCase {
    private var db: PostgresConnection!
    private var nextIndex = 0

    override func setUpWithError() throws {
        try TestServers.reset()
        db = try TestServers.database()
    }

    private func spend(_ user: Int, _ amount: Int, _ outcome: HistoryOutcome = .ok, reason: String? = nil) -> HistoryEntry {
        nextIndex += 1
        return HistoryEntry(
            client: 0, index: nextIndex, operation: .spend, arguments: ["user": user, "amount": amount],
            items: nil, start: Double(nextIndex), end: Double(nextIndex) + 0.5, outcome: outcome, reason: reason, result: nil)
    }

    private func violations(_ history: [HistoryEntry]) throws -> [String] {
        let scenario = try ScenarioParser.parse(
            "name: constructed\ncase: daily-spend\nstrategy: seed\nworkload: {virtual_users: 1, iterations: 1}\n", file: "constructed.yaml")
        let checker = DailyLimitChecker()
        for entry in history where checker.operations.contains(entry.operation) { checker.observe(entry) }
        let result = try checker.check(CheckContext(scenario: scenario, initial: InitialState(), db: db, statistics: RunStatistics()))
        XCTAssertEqual(result.passed, result.violations.isEmpty)
        return result.violations.map(\.name)
    }

    /// A user with a daily limit of 3,000 and rows of `amounts` today.
    private func user(limit: Int = 3_000, spent amounts: [Int]) throws -> Int {
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        try SeedData(db: db).spendingLimits(users: [user], dailyLimit: limit)
        for amount in amounts {
            try db.query("INSERT INTO spends (user_id, day, amount) VALUES ($1, current_date, $2)", [user, amount])
        }
        return user
    }

    func testPassesWhenEveryDayStaysUnderItsLimit() throws {
        let user = try user(spent: [1_000, 2_000])
        XCTAssertEqual(
            try violations([spend(user, 1_000), spend(user, 2_000), spend(user, 1_000, .fail, reason: "daily_limit_exceeded")]), [])
    }

    func testCatchesADayOverItsLimit() throws {
        let user = try user(spent: [2_000, 2_000])
        XCTAssertEqual(try violations([spend(user, 2_000), spend(user, 2_000)]), ["daily-limit-exceeded"])
    }

    func testTheLimitIsPerDay() throws {
        let user = try user(spent: [2_000])
        try db.query("INSERT INTO spends (user_id, day, amount) VALUES ($1, current_date - 1, 2000)", [user])
        XCTAssertEqual(try violations([spend(user, 2_000), spend(user, 2_000)]), [], "2,000 on each of two days under 3,000 a day")
    }

    func testCatchesAnAcknowledgedSpendWithoutItsRow() throws {
        let user = try user(spent: [1_000])
        XCTAssertEqual(try violations([spend(user, 1_000), spend(user, 1_000)]), ["acknowledged-spend-missing"])
    }

    func testCatchesARowNoClientWasToldAbout() throws {
        let user = try user(spent: [1_000, 1_000])
        XCTAssertEqual(try violations([spend(user, 1_000), spend(user, 1_000, .fail, reason: "deadlock")]), ["spend-never-acknowledged"])
        XCTAssertEqual(try violations([spend(user, 1_000), spend(user, 1_000, .unknown)]), [], "an unknown spend may have committed")
    }

    func testCatchesARefusalWhileTheDayHadRoom() throws {
        // The day ended at 1,000 of 3,000: when the 2,000 was refused the total was at most
        // 1,000, so it fitted.
        let user = try user(spent: [1_000])
        XCTAssertEqual(
            try violations([spend(user, 1_000), spend(user, 2_000, .fail, reason: "daily_limit_exceeded")]), ["refused-under-limit"])
    }

    func testCatchesASpendWithoutALimit() throws {
        let user = try SeedData(db: db).users(count: 1, balance: 0)[0]
        try db.query("INSERT INTO spends (user_id, day, amount) VALUES ($1, current_date, 10)", [user])
        XCTAssertEqual(try violations([spend(user, 10)]), ["spend-without-limit"])
    }
}
