import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofTestSupport
import XCTest
import Synchronization

/// Durable payments: the intent is written with the deduction, and `PaymentRecovery` settles every
/// interrupted payment exactly once by asking the gateway (its records live in gateway_charges, so
/// a recovery in another process sees them too).
final class PaymentRecoveryTests: CommerceTestCase {
    private func databaseGateway(failureRate: Double = 0, timeoutRate: Double = 0) throws -> SimulatedPaymentGateway {
        let gateway = SimulatedPaymentGateway(
            failureRate: failureRate, seed: 3, records: try DatabaseGatewayRecords(databaseURL: TestServers.configuration.databaseURL))
        gateway.behaviour.timeoutRate = timeoutRate
        return gateway
    }

    private func oneOrder(balance: Int = 10_000) throws -> (user: Int, product: Int, order: Int) {
        let userId = try seed.users(count: 1, balance: balance)[0]
        let productId = try seed.products(count: 1, price: 1_000, stock: 10)[0]
        return (userId, productId, try order(userId: userId, productId: productId, quantity: 2, unitPrice: 1_000))
    }

    func testACrashAfterTheDeductionLeavesARecordThatRecoveryCompensatesOnce() throws {
        let (userId, productId, orderId) = try oneOrder()
        let client = try TestServers.client(gateway: try databaseGateway())
        client.faults.afterDeduction = { _ in throw ClientCrashed(point: "after the deduction") }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            XCTAssertEqual(OperationOutcome.classify($0), .unknown, "the client died: it cannot know")
        }
        XCTAssertEqual(try balance(userId), 8_000, "the deduction committed…")
        XCTAssertEqual(try scalar("SELECT count(*) FROM payment_intents WHERE order_id = $1 AND status = 'open'", [orderId]), 1,
                       "…and so did the intent to pay, in the same transaction")

        // Another process: a fresh client and gateway object over the same records.
        let recoverer = try TestServers.client(gateway: try databaseGateway())
        let report = try PaymentRecovery.run(client: recoverer)
        XCTAssertEqual(report.interrupted, 1)
        XCTAssertEqual(report.compensated, 1, "the gateway never charged it: give everything back")
        XCTAssertEqual(report.stillOpen, 0)
        XCTAssertEqual(try balance(userId), 10_000)
        XCTAssertEqual(try stock(productId), 10)
        XCTAssertEqual(try ledgerSum(userId: userId), 10_000)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAYMENT_FAILED")
        XCTAssertEqual(try db.query("SELECT outcome FROM gateway_charges WHERE order_id = $1", [orderId]).string(0, 0), "voided")

        let again = try PaymentRecovery.run(client: recoverer)
        XCTAssertEqual(again, RecoveryReport(), "re-running changes nothing")
        XCTAssertEqual(try balance(userId), 10_000)
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger WHERE reason = 'compensation'"), 1)
    }

    /// `serve`'s background recovery: the same pass on its own thread, for intents at least one
    /// interval old, and nothing runs after `stop`.
    func testPeriodicRecoverySettlesAnInterruptedPaymentOnItsOwnThread() throws {
        let (userId, _, orderId) = try oneOrder()
        let client = try TestServers.client(gateway: try databaseGateway())
        client.faults.afterDeduction = { _ in throw ClientCrashed(point: "after the deduction") }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId))
        XCTAssertEqual(try balance(userId), 8_000)

        let recovery = PeriodicRecovery(client: try TestServers.client(gateway: try databaseGateway()), intervalSeconds: 0.2)
        XCTAssertNil(recovery.lastReport)
        recovery.start()
        let deadline = Date(timeIntervalSinceNow: 30)
        while try balance(userId) != 10_000 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        recovery.stop()
        XCTAssertNotNil(recovery.lastReport, "no pass ran")
        XCTAssertEqual(try balance(userId), 10_000, "compensated once")
        XCTAssertEqual(try scalar("SELECT count(*) FROM balance_ledger WHERE reason = 'compensation'"), 1)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAYMENT_FAILED")
    }

    /// The gateway charged, then the client could not mark the order PAID (its row lock timed
    /// out behind another session): the money is taken, so the outcome is unknown, not a failure
    /// a checker would read as "took nothing"; recovery then marks the order PAID once.
    func testAFailureAfterTheDeductionIsUnknownAndRecoveryFinishesThePayment() throws {
        let (userId, productId, orderId) = try oneOrder()
        var settings = CommerceSettings()
        settings.rowLockTimeoutMilliseconds = 200
        let client = try TestServers.client(settings: settings, gateway: try databaseGateway())
        let blocker = UncheckedSession(try TestServers.database())
        client.faults.afterDeduction = { id in
            _ = try blocker.session.execute("BEGIN")
            _ = try blocker.session.query("SELECT id FROM orders WHERE id = $1 FOR UPDATE", [id])
        }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            XCTAssertTrue($0 is PaymentInterrupted, "\($0)")
            XCTAssertEqual(OperationOutcome.classify($0), .unknown, "the deduction committed: not a plain failure")
        }
        _ = try blocker.session.execute("ROLLBACK")
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAYING")
        XCTAssertEqual(try balance(userId), 8_000)

        let report = try PaymentRecovery.run(client: try TestServers.client(gateway: try databaseGateway()))
        XCTAssertEqual(report.markedPaid, 1, "the gateway had charged it")
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try balance(userId), 8_000, "charged exactly once")
        XCTAssertEqual(try stock(productId), 8)
    }

    /// A refusal before anything was taken stays a plain refusal.
    func testARefusalBeforeTheDeductionIsNotInterrupted() throws {
        let (_, _, orderId) = try oneOrder(balance: 100)
        let client = try TestServers.client(gateway: try databaseGateway())
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            XCTAssertFalse($0 is PaymentInterrupted, "\($0)")
            XCTAssertEqual(OperationOutcome.classify($0), .rejected)
        }
    }

    /// The gateway records on sessions of its own, several at once; when all are busy past its
    /// bound it answers nothing (a timeout: it recorded nothing, so recovery voids the order), and
    /// every call it did record keeps its first answer.
    func testTheGatewayRecordsConcurrentlyAndTimesOutWhenEverySessionIsBusy() throws {
        let records = try DatabaseGatewayRecords(databaseURL: TestServers.configuration.databaseURL, sessions: 1, waitSeconds: 0.2)
        // Another transaction's uncommitted record of order 1 holds the gateway's only session
        // (its INSERT waits on the unique key) for as long as this test keeps it open.
        let holder = try TestServers.database()
        _ = try holder.execute("BEGIN")
        _ = try holder.query("INSERT INTO gateway_charges (order_id, amount, outcome) VALUES (1, 5, 'approved')")
        let first = ResultBox()
        let firstDone = DispatchSemaphore(value: 0)
        Thread {
            first.set(Result { try records.first(orderId: 1, amount: 5, .declined) })
            firstDone.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.1)  // let it take the session; if it has not, the next call simply waits
        XCTAssertThrowsError(try records.first(orderId: 2, amount: 7, .approved), "no session free within 0.2 s") {
            XCTAssertTrue($0 is GatewayTimeout, "\($0)")
        }
        _ = try holder.execute("ROLLBACK")
        XCTAssertEqual(firstDone.wait(timeout: .now() + 30), .success, "the first call never finished")
        XCTAssertEqual(try first.value?.get(), .declined, "once the other record is gone, the call records its own answer")
        XCTAssertEqual(try scalar("SELECT count(*) FROM gateway_charges WHERE order_id = 2"), 0, "the timed-out call recorded nothing")

        // With more sessions, concurrent calls all record, each once.
        let wide = try DatabaseGatewayRecords(databaseURL: TestServers.configuration.databaseURL, sessions: 4)
        let barrier = StartBarrier(parties: 16)
        let group = DispatchGroup()
        let failures = ResultBox()
        for order in 100..<116 {
            group.enter()
            Thread {
                defer { group.leave() }
                barrier.arriveAndWait()
                if case .failure = Result(catching: { try wide.first(orderId: order, amount: order, .approved) }) {
                    failures.set(.success(.declined))
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "concurrent gateway calls hung")
        XCTAssertNil(failures.value, "a concurrent call failed")
        XCTAssertEqual(try scalar("SELECT count(*) FROM gateway_charges WHERE order_id BETWEEN 100 AND 115"), 16)
    }

    func testAChargeTheGatewayMadeButNeverAnsweredIsMarkedPaid() throws {
        let (userId, productId, orderId) = try oneOrder()
        let client = try TestServers.client(gateway: try databaseGateway(timeoutRate: 1))
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            XCTAssertTrue($0 is GatewayTimeout, "\($0)")
            XCTAssertEqual(OperationOutcome.classify($0), .unknown)
        }
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAYING")
        let report = try PaymentRecovery.run(client: try TestServers.client(gateway: try databaseGateway()))
        XCTAssertEqual(report.markedPaid, 1)
        XCTAssertEqual(report.compensated, 0)
        XCTAssertEqual(try db.query("SELECT status FROM orders WHERE id = $1", [orderId]).string(0, 0), "PAID")
        XCTAssertEqual(try balance(userId), 8_000, "charged exactly once")
        XCTAssertEqual(try stock(productId), 8)
        XCTAssertEqual(try PaymentRecovery.run(client: client), RecoveryReport())
    }

    func testAPaymentStillInFlightWhenRecoveryVoidsItIsDeclinedNotChargedTwice() throws {
        let (userId, _, orderId) = try oneOrder()
        let gateway = try databaseGateway()
        XCTAssertEqual(try gateway.settle(orderId: orderId), .voided, "recovery asked first: the gateway voids the order")
        let client = try TestServers.client(gateway: gateway)
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId)) {
            XCTAssertTrue(isDomainError($0) { if case .paymentDeclined = $0 { return true } else { return false } }, "\($0)")
        }
        XCTAssertEqual(try balance(userId), 10_000, "compensated, and the gateway never charged")
        XCTAssertEqual(try scalar("SELECT count(*) FROM payment_intents WHERE status = 'compensated'"), 1)
    }

    func testAFailedCompensationIsPendingUntilRecoveryAndThenConservationHolds() throws {
        let (userId, productId, orderId) = try oneOrder()
        let client = try TestServers.client(gateway: try databaseGateway(failureRate: 1))
        struct LockTimeoutStandIn: Error {}
        client.faults.beforeCompensationCommit = { _ in throw LockTimeoutStandIn() }
        XCTAssertThrowsError(try ProcessPayment(client: client).pay(orderId: orderId))
        XCTAssertEqual(try Compensation.pending(db: db), [orderId])
        let report = try PaymentRecovery.run(client: try TestServers.client(gateway: try databaseGateway()))
        XCTAssertEqual(report.compensationsPendingBefore, 1)
        XCTAssertEqual(report.compensationsPendingAfter, 0)
        XCTAssertEqual(report.compensated, 1, "the open intent was settled by the compensation")
        XCTAssertEqual(try balance(userId), 10_000)
        XCTAssertEqual(try stock(productId), 10)
        XCTAssertEqual(try ledgerSum(userId: userId), 10_000)
        XCTAssertEqual(try scalar("SELECT count(*) FROM payment_intents WHERE status = 'open'"), 0)
    }

    func testAPaidOrderHasASettledIntentAndNothingToRecover() throws {
        let (userId, _, orderId) = try oneOrder()
        let client = try TestServers.client(gateway: try databaseGateway())
        _ = try ProcessPayment(client: client).pay(orderId: orderId)
        XCTAssertEqual(try db.query("SELECT status FROM payment_intents WHERE order_id = $1", [orderId]).string(0, 0), "paid")
        XCTAssertEqual(try PaymentRecovery.run(client: client), RecoveryReport())
        XCTAssertEqual(try balance(userId), 8_000)
    }
}

/// A session handed to a fault hook, which must be Sendable; only the test's thread and the hook
/// (called on the same thread, inside `pay`) use it, one after the other.
private final class UncheckedSession: @unchecked Sendable {
    let session: PostgresConnection
    init(_ session: PostgresConnection) { self.session = session }
}

private final class ResultBox: Sendable {
    private let stored = Mutex<Result<GatewayAnswer, any Error>?>(nil)
    func set(_ result: Result<GatewayAnswer, any Error>) { stored.withLock { $0 = result } }
    var value: Result<GatewayAnswer, any Error>? { stored.withLock { $0 } }
}
