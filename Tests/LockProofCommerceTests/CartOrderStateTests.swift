import LockProofCommerce
import LockProofTestSupport
import XCTest

final class CartOrderStateTests: CommerceTestCase {
    /// complete() and cancel() racing on each of `orders` orders.
    private func raceTransitions(_ strategy: StateChangeStrategy, orders count: Int) throws
        -> [(orderId: Int, results: [Result<OrderTransition, any Error>])]
    {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let productId = try seed.products(count: 1, price: 10, stock: 10)[0]
        var outcome: [(Int, [Result<OrderTransition, any Error>])] = []
        for _ in 0..<count {
            let orderId = try order(userId: userId, productId: productId, quantity: 1, unitPrice: 10)
            let results = try runConcurrently(clients: 2, setup: { _ in try TestServers.client(settings: Self.settings()) }) {
                index, client in
                let state = OrderState(client: client, strategy: strategy)
                return try index == 0 ? state.complete(orderId: orderId) : state.cancel(orderId: orderId)
            }
            outcome.append((orderId, results))
        }
        return outcome
    }

    func testCompleteAndCancelRacingExactlyOneWins() throws {
        for (orderId, results) in try raceTransitions(.seed, orders: 20) {
            let winners = results.compactMap(\.value)
            XCTAssertEqual(winners.count, 1, "order \(orderId): \(results)")
            // Already failed above when nobody won: nothing to compare the state with.
            guard let winner = winners.first else { continue }
            let loser = results.compactMap(\.error).first as? DomainError
            let clear: Bool
            switch loser {
            case .conflict(entity: "order", id: orderId): clear = true
            case .invalidTransition(orderId: orderId, from: winner.to, to: _): clear = true
            default: clear = false
            }
            XCTAssertTrue(clear, "the loser gets a clear conflict, got \(String(describing: loser))")
            let status = try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0)
            XCTAssertEqual(status, winner.to.rawValue, "the stored state is the winner's")
        }
    }

    func testNaiveLastWriteWinsIsCaughtWithTwoWinners() throws {
        let raced = try raceTransitions(.naive, orders: 10)
        let doubleWins = raced.filter { $0.results.compactMap(\.value).count == 2 }
        XCTAssertGreaterThan(doubleWins.count, 0, "without a version check both transitions report success")
    }

    func testInvalidTransitionsAreRefusedAndWriteNothing() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let productId = try seed.products(count: 1, price: 10, stock: 10)[0]
        let orderId = try order(userId: userId, productId: productId, quantity: 1, unitPrice: 10)
        let state = OrderState(client: try TestServers.client())
        XCTAssertEqual(try state.complete(orderId: orderId), OrderTransition(orderId: orderId, from: .pending, to: .completed))
        XCTAssertThrowsError(try state.cancel(orderId: orderId)) {
            XCTAssertEqual($0 as? DomainError, .invalidTransition(orderId: orderId, from: .completed, to: .cancelled))
        }
        XCTAssertThrowsError(try state.move(orderId, to: .paid)) {
            if case .invalidTransition = $0 as? DomainError {} else { XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try state.cancel(orderId: 5_555)) { XCTAssertEqual($0 as? DomainError, .notFound(entity: "order", id: 5_555)) }
        XCTAssertEqual(try scalar("SELECT version FROM orders WHERE id = $1", [orderId]), 1)
        XCTAssertEqual(OrderStatus.pending.allowedNext, [.paying, .completed, .cancelled])
        XCTAssertTrue(OrderStatus.completed.allowedNext.isEmpty)
    }

    /// `clients` concurrent adds of 1 to one cart line.
    private func raceCart(_ strategy: StateChangeStrategy, clients: Int = 10) throws -> (final: Int, acknowledged: Int, conflicts: Int) {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let productId = try seed.products(count: 1, price: 10, stock: 10)[0]
        let results = try runConcurrently(clients: clients, setup: { _ in try TestServers.client(settings: Self.settings()) }) {
            _, client in try CartQuantity(client: client, strategy: strategy).add(userId: userId, productId: productId, quantity: 1)
        }
        let conflicts = results.filter {
            if case .conflict = $0.error as? DomainError { return true } else { return false }
        }.count
        let final = try scalar("SELECT quantity FROM cart_items WHERE user_id = $1 AND product_id = $2", [userId, productId])
        return (final, results.filter { $0.value != nil }.count, conflicts)
    }

    func testCartKeepsEveryAcknowledgedIncrementAndReportsConflicts() throws {
        let (final, acknowledged, conflicts) = try raceCart(.seed)
        XCTAssertEqual(final, acknowledged, "no lost cart increment")
        XCTAssertEqual(acknowledged + conflicts, 10, "every add either counted or was told it conflicted")
        XCTAssertGreaterThan(conflicts, 0, "ten racing adds without retry must conflict")
    }

    func testCartWithRetryKeepsEveryIncrement() throws {
        let (final, acknowledged, _) = try raceCart(.optimisticRetry)
        XCTAssertEqual(acknowledged, 10)
        XCTAssertEqual(final, 10)
    }

    func testNaiveCartIsCaughtLosingIncrements() throws {
        let (final, acknowledged, _) = try raceCart(.naive)
        XCTAssertEqual(acknowledged, 10)
        XCTAssertLessThan(final, acknowledged, "last write wins lost increments")
    }

    func testCartBadInput() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let cart = CartQuantity(client: try TestServers.client())
        XCTAssertThrowsError(try cart.add(userId: userId, productId: 1, quantity: 0)) { XCTAssertEqual($0 as? DomainError, .invalidQuantity(0)) }
        XCTAssertThrowsError(try cart.add(userId: userId, productId: 99, quantity: 1)) {
            XCTAssertEqual($0 as? DomainError, .notFound(entity: "product", id: 99))
        }
        XCTAssertEqual(try scalar("SELECT count(*) FROM cart_items"), 0)
    }
}
