import LockProofCommerce
import LockProofTestSupport
import XCTest

final class IssueCouponTests: CommerceTestCase {
    /// `clients` distinct users race for a coupon of `total`.
    private func race(_ strategy: IssueCouponStrategy, clients: Int, total: Int) throws
        -> (couponId: Int, results: [Result<CouponIssue, any Error>])
    {
        let users = try seed.users(count: clients, balance: 0)
        let couponId = try seed.coupon(totalQuantity: total)
        let settings = Self.settings()
        let results = try runConcurrently(clients: clients, setup: { _ in try TestServers.client(settings: settings) }) {
            index, client in
            try IssueCoupon(client: client, strategy: strategy).issue(couponId: couponId, userId: users[index])
        }
        return (couponId, results)
    }

    private func issued(_ couponId: Int) throws -> (rows: Int, quantity: Int) {
        (
            try scalar("SELECT count(*) FROM user_coupons WHERE coupon_id = $1", [couponId]),
            try scalar("SELECT issued_quantity FROM coupons WHERE id = $1", [couponId])
        )
    }

    func testTwoHundredUsersRaceForOneHundredCoupons() throws {
        for strategy in [IssueCouponStrategy.seed, .pessimistic, .atomic] {
            try TestServers.reset()
            let (couponId, results) = try race(strategy, clients: 200, total: 100)
            XCTAssertEqual(results.filter { $0.value != nil }.count, 100, "\(strategy)")
            XCTAssertEqual(
                results.filter { $0.error as? DomainError == .soldOut(couponId: couponId) }.count, 100,
                "\(strategy): the other 100 are refused as sold out: \(results.compactMap(\.error).prefix(3))")
            let (rows, quantity) = try issued(couponId)
            XCTAssertEqual(rows, 100, "\(strategy)")
            XCTAssertEqual(quantity, 100, "\(strategy)")
        }
    }

    func testFiftyUsersForTheLastCoupon() throws {
        let (couponId, results) = try race(.seed, clients: 50, total: 1)
        XCTAssertEqual(results.filter { $0.value != nil }.count, 1)
        XCTAssertEqual(try issued(couponId).rows, 1)
        XCTAssertEqual(try issued(couponId).quantity, 1)
    }

    func testNaiveIssueIsCaughtOverIssuing() throws {
        let (couponId, results) = try race(.naive, clients: 50, total: 10)
        let (rows, quantity) = try issued(couponId)
        let acknowledged = results.filter { $0.value != nil }.count
        XCTAssertEqual(rows, acknowledged, "every acknowledged issue has its row")
        XCTAssertTrue(rows > 10 || rows != quantity, "naive issue kept the quantity exact: rows \(rows), issued_quantity \(quantity)")
        XCTAssertGreaterThan(rows, 10, "more coupons than exist were handed out")
    }

    func testOneUserRequestingTenTimesGetsOneCoupon() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        for strategy in [IssueCouponStrategy.seed, .pessimistic, .atomic, .naive] {
            let couponId = try seed.coupon(totalQuantity: 100)
            let results = try runConcurrently(clients: 10, setup: { _ in try TestServers.client(settings: Self.settings()) }) {
                _, client in try IssueCoupon(client: client, strategy: strategy).issue(couponId: couponId, userId: userId)
            }
            XCTAssertEqual(results.filter { $0.value != nil }.count, 1, "\(strategy)")
            XCTAssertEqual(try issued(couponId).rows, 1, "\(strategy): the unique constraint holds as the last line")
            let duplicates = results.compactMap { $0.error as? DomainError }.filter {
                if case .alreadyIssued = $0 { return true } else { return false }
            }
            XCTAssertEqual(duplicates.count, 9, "\(strategy): \(results.compactMap(\.error))")
        }
    }

    func testSeedApplicationCheckCatchesSequentialDuplicates() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let couponId = try seed.coupon(totalQuantity: 5)
        let client = try TestServers.client()
        _ = try IssueCoupon(client: client).issue(couponId: couponId, userId: userId)
        XCTAssertThrowsError(try IssueCoupon(client: client).issue(couponId: couponId, userId: userId)) {
            XCTAssertEqual($0 as? DomainError, .alreadyIssued(userId: userId, couponId: couponId, detectedBy: .applicationCheck))
        }
        XCTAssertThrowsError(try IssueCoupon(client: client, strategy: .pessimistic).issue(couponId: couponId, userId: userId)) {
            XCTAssertEqual($0 as? DomainError, .alreadyIssued(userId: userId, couponId: couponId, detectedBy: .uniqueConstraint))
        }
    }

    func testBadInputIsATypedErrorAndWritesNothing() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let couponId = try seed.coupon(totalQuantity: 5)
        let client = try TestServers.client()
        for strategy in IssueCouponStrategy.allCases {
            XCTAssertThrowsError(try IssueCoupon(client: client, strategy: strategy).issue(couponId: 777, userId: userId)) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "coupon", id: 777), "\(strategy)")
            }
            XCTAssertThrowsError(try IssueCoupon(client: client, strategy: strategy).issue(couponId: couponId, userId: 888)) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "user", id: 888), "\(strategy)")
            }
        }
        XCTAssertEqual(try issued(couponId).rows, 0)
        XCTAssertEqual(try issued(couponId).quantity, 0)
    }
}
