import Foundation
import LockProofRedis
import LockProofTestSupport
import XCTest

@testable import LockProofLocking

/// The release notifier's subscriber thread reads with no timeout; `stop` must end it whatever it
/// is doing, including moving to a new primary after a failover.
final class LockReleaseNotifierTests: XCTestCase {
    /// The primary dies and the route moves; `stop` comes while the notifier thread waits before
    /// resubscribing. Before the fix it then connected to the new primary and read there forever,
    /// and `stop` never returned (FailoverTests hung CI this way).
    func testStopDuringTheMoveToANewPrimaryReturns() throws {
        let old = try ThrowawayRedis(arguments: [])
        let new = try ThrowawayRedis(arguments: [])
        let route = RedisRoute(old.endpoint)
        let notifier = try LockReleaseNotifier(endpoint: old.endpoint, route: route)
        route.switchTo(new.endpoint)
        // The old primary drops the subscriber at once (as its death would; a SIGKILL's reaping
        // takes too long to aim at the window): the thread sees the closed socket and sleeps 50 ms
        // before it moves to the new primary. Stop in there.
        _ = try RedisConnection(endpoint: old.endpoint).checked(["CLIENT", "KILL", "TYPE", "pubsub"])
        Thread.sleep(forTimeInterval: 0.01)
        assertStopsWithinABound(notifier, "stop hung on the notifier's read from the new primary")
        new.stop()  // ends such a read, so that a failure here leaves no thread behind
        old.stop()
    }

    /// A release published on the server wakes a waiter at once, and `stop` ends a notifier that
    /// is reading.
    func testAReleaseWakesTheWaiterAndStopEndsTheRead() throws {
        let server = try ThrowawayRedis(arguments: [])
        let notifier = try LockReleaseNotifier(endpoint: server.endpoint)
        let publisher = try RedisConnection(endpoint: server.endpoint)
        let before = notifier.generation(of: "k")
        _ = try publisher.checked(["PUBLISH", LockScripts.releaseChannel, "k"])
        notifier.wait(for: "k", changingFrom: before, until: monotonicSeconds() + 10)
        XCTAssertEqual(notifier.generation(of: "k"), before + 1, "the release message did not arrive within 10 s")
        assertStopsWithinABound(notifier)
        server.stop()
    }

    /// A release published while the subscription is lost is never heard; the waiter would sleep
    /// out its holder's lease (5 s: `fault-redis-down-charge-seed-pooled` saw a 5.0 s charge after
    /// Redis came back). Once the notifier has subscribed again it wakes every waiter to try again.
    func testWaitersAreWokenWhenTheSubscriptionComesBack() throws {
        let server = try ThrowawayRedis(arguments: [])
        let notifier = try LockReleaseNotifier(endpoint: server.endpoint)
        let before = notifier.generation(of: "k")
        _ = try RedisConnection(endpoint: server.endpoint).checked(["CLIENT", "KILL", "TYPE", "pubsub"])
        let started = monotonicSeconds()
        notifier.wait(for: "k", changingFrom: before, until: started + 30)
        let waited = monotonicSeconds() - started
        XCTAssertNotEqual(notifier.generation(of: "k"), before, "the waiter ran out its 30 s bound: never woken after resubscribing")
        XCTAssertLessThan(waited, 30)
        // And the new subscription hears releases again.
        let now = notifier.generation(of: "k")
        _ = try RedisConnection(endpoint: server.endpoint).checked(["PUBLISH", LockScripts.releaseChannel, "k"])
        notifier.wait(for: "k", changingFrom: now, until: monotonicSeconds() + 10)
        XCTAssertEqual(notifier.generation(of: "k"), now + 1, "no release heard on the new subscription within 10 s")
        assertStopsWithinABound(notifier)
        server.stop()
    }

    /// `stop` from another thread, waited for with a bound, so that a hung stop fails the test.
    private func assertStopsWithinABound(
        _ notifier: LockReleaseNotifier, _ message: String = "stop did not return within 15 s", line: UInt = #line
    ) {
        let stopped = DispatchSemaphore(value: 0)
        Thread {
            notifier.stop()
            stopped.signal()
        }.start()
        XCTAssertEqual(stopped.wait(timeout: .now() + 15), .success, message, line: line)
    }
}
