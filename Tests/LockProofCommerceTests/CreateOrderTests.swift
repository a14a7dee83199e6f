import LockProofCommerce
import LockProofPostgres
import LockProofTestSupport
import XCTest

final class CreateOrderTests: CommerceTestCase {
    /// 10 products of stock 10; user u orders products u…u+4 (mod 10), 2 of each, in shuffled order,
    /// so that every product is wanted by exactly five users.
    private func race(_ strategy: CreateOrderStrategy, seed generatorSeed: UInt64) throws
        -> (users: [Int], products: [Int], results: [Result<CreatedOrder, any Error>])
    {
        let users = try seed.users(count: 10, balance: 1_000_000)
        let products = try seed.products(count: 10, price: 100, stock: 10)
        var generator = SeededGenerator(seed: generatorSeed)
        let baskets = (0..<10).map { user in
            (0..<5).map { OrderItemRequest(productId: products[(user + $0) % 10], quantity: 2) }.shuffled(using: &generator)
        }
        let settings = {
            var settings = Self.settings()
            settings.rowLockTimeoutMilliseconds = 10_000
            return settings
        }()
        let results = try runConcurrently(clients: 10, setup: { _ in try TestServers.client(settings: settings) }) {
            index, client in
            try CreateOrder(client: client, strategy: strategy).create(userId: users[index], items: baskets[index])
        }
        return (users, products, results)
    }

    func testSortedLocksNeverDeadlockAndPaymentEmptiesEveryStock() throws {
        for round in 0..<3 {
            try TestServers.reset()
            let (_, products, results) = try race(.seed, seed: UInt64(round))
            XCTAssertEqual(results.compactMap(\.error).count, 0, "round \(round): \(results.compactMap(\.error))")
            let orders = results.compactMap(\.value)
            XCTAssertEqual(orders.count, 10)
            // Paying reads orders[index] on every client: stop this round rather than crash the run.
            guard orders.count == 10 else { continue }
            XCTAssertTrue(orders.allSatisfy { $0.totalAmount == 5 * 2 * 100 })
            for product in products { XCTAssertEqual(try stock(product), 10, "creating an order deducts nothing") }

            let payments = try runConcurrently(clients: 10, setup: { _ in try TestServers.client() }) { index, client in
                try ProcessPayment(client: client).pay(orderId: orders[index].orderId)
            }
            XCTAssertEqual(payments.compactMap(\.error).count, 0, "\(payments.compactMap(\.error))")
            for product in products { XCTAssertEqual(try stock(product), 0, "every stock is 0 after payment") }
        }
    }

    func testUnsortedLocksDeadlockAndTheDeadlockIsTyped() throws {
        // Deadlocks need an unlucky interleaving; a few rounds make one certain in practice.
        var deadlocks = 0
        var rounds = 0
        while deadlocks == 0 && rounds < 10 {
            try TestServers.reset()
            let (_, _, results) = try race(.unsorted, seed: UInt64(rounds))
            deadlocks += results.filter { ($0.error as? PostgresError)?.kind == .deadlock }.count
            let unexpected = results.compactMap(\.error).filter { ($0 as? PostgresError)?.kind != .deadlock }
            XCTAssertEqual(unexpected.count, 0, "only deadlocks: \(unexpected)")
            rounds += 1
        }
        XCTAssertGreaterThan(deadlocks, 0, "locking in the client's order never deadlocked in \(rounds) rounds")
    }

    func testStockCheckAtCreationDoesNotStopOverselling() throws {
        // Claim 8: row locks end at commit and stock is deducted only at payment, so more orders than
        // stock can be created; payment is what must catch it.
        let users = try seed.users(count: 5, balance: 1_000_000)
        let productId = try seed.products(count: 1, price: 100, stock: 3)[0]
        let results = try runConcurrently(clients: 5, setup: { _ in try TestServers.client() }) { index, client in
            try CreateOrder(client: client).create(userId: users[index], items: [OrderItemRequest(productId: productId, quantity: 3)])
        }
        let orders = results.compactMap(\.value)
        XCTAssertEqual(orders.count, 5, "every order passes the stock check: stock is not reserved")
        guard orders.count == 5 else { return }
        let payments = try runConcurrently(clients: 5, setup: { _ in try TestServers.client() }) { index, client in
            try ProcessPayment(client: client).pay(orderId: orders[index].orderId)
        }
        XCTAssertEqual(payments.filter { $0.value != nil }.count, 1, "payment lets exactly one through")
        XCTAssertEqual(try stock(productId), 0)
    }

    func testBadInputIsATypedErrorAndWritesNothing() throws {
        let userId = try seed.users(count: 1, balance: 0)[0]
        let productId = try seed.products(count: 1, price: 100, stock: 2)[0]
        let client = try TestServers.client()
        // The single-bound controls are wrong even alone; their scenarios judge them.
        for strategy in CreateOrderStrategy.allCases where !CreateOrderCase.traits(strategy).singleBoundControl {
            let create = CreateOrder(client: client, strategy: strategy)
            XCTAssertThrowsError(try create.create(userId: userId, items: [])) { XCTAssertEqual($0 as? DomainError, .emptyOrder) }
            XCTAssertThrowsError(try create.create(userId: userId, items: [.init(productId: productId, quantity: 0)])) {
                XCTAssertEqual($0 as? DomainError, .invalidQuantity(0))
            }
            XCTAssertThrowsError(try create.create(userId: userId, items: [.init(productId: 31_337, quantity: 1)])) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "product", id: 31_337), "\(strategy)")
            }
            XCTAssertThrowsError(try create.create(userId: 4_040, items: [.init(productId: productId, quantity: 1)])) {
                XCTAssertEqual($0 as? DomainError, .notFound(entity: "user", id: 4_040))
            }
            XCTAssertThrowsError(
                try create.create(userId: userId, items: [.init(productId: productId, quantity: 2), .init(productId: productId, quantity: 1)])
            ) { XCTAssertEqual($0 as? DomainError, .insufficientStock(productId: productId, available: 2, requested: 3)) }
        }
        XCTAssertEqual(try scalar("SELECT count(*) FROM orders"), 0)
        XCTAssertEqual(try scalar("SELECT count(*) FROM order_items"), 0)
    }
}
