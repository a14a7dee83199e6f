import Foundation
import LockProofLocking
import LockProofRedis
import LockProofTestSupport
import XCTest
import Synchronization

final class DistributedLockTests: XCTestCase {
    override func setUpWithError() throws { try TestServers.redis().checked(["FLUSHDB"]) }

    private static func lockClient() throws -> DistributedLockClient {
        DistributedLockClient(
            redis: try TestServers.redis(), notifier: TestServers.shared.notifier, renewer: TestServers.shared.renewer)
    }

    private let probe = Probe(caseName: "charge-balance")

    func testMutualExclusionAcrossThreads() throws {
        let key = "test:mutex"
        let inside = Counter()
        let clients = 16
        let rounds = 10
        let results = try runConcurrently(clients: clients, timeout: 60, setup: { _ in try Self.lockClient() }) {
            _, locks -> Int in
            var maxSeen = 0
            for _ in 0..<rounds {
                try locks.withLock(key, options: .standard, probe: Probe(caseName: "t")) { _ in
                    maxSeen = max(maxSeen, inside.add(1))
                    // A read-modify-write on Redis that only mutual exclusion keeps exact.
                    let value = try counterValue(locks.redis.command(["GET", "test:mutex:count"]))
                    LockProofLocking.sleep(seconds: 0.0005)
                    try locks.redis.checked(["SET", "test:mutex:count", String(value + 1)])
                    _ = inside.add(-1)
                }
            }
            return maxSeen
        }
        XCTAssertEqual(results.compactMap(\.value).max(), 1, "never two holders at once: \(results)")
        XCTAssertEqual(try TestServers.redis().command(["GET", "test:mutex:count"]).text, String(clients * rounds))
    }

    func testUnprotectedCounterLosesUpdates() throws {
        // The negative control for the test above: without the lock the same increments are lost.
        let results = try runConcurrently(clients: 16, timeout: 60, setup: { _ in try TestServers.redis() }) {
            _, redis -> Bool in
            for _ in 0..<10 {
                let value = try counterValue(redis.command(["GET", "test:nolock:count"]))
                LockProofLocking.sleep(seconds: 0.0005)
                try redis.checked(["SET", "test:nolock:count", String(value + 1)])
            }
            return true
        }
        XCTAssertEqual(results.compactMap(\.value).count, 16)
        let final = try counterValue(TestServers.redis().command(["GET", "test:nolock:count"]))
        XCTAssertLessThan(final, 160, "unlocked read-modify-write lost no update: the race did not happen")
    }

    func testExpiredHolderCannotReleaseTheNextHoldersLock() throws {
        let first = try Self.lockClient()
        let second = try Self.lockClient()
        let sink = RecordingEventSink()
        let probe = Probe(caseName: "charge-balance", sink: sink)
        let short = DistributedLockOptions(leaseMilliseconds: 100, waitMilliseconds: 2_000, renewLease: false)
        let stale = try first.acquire("test:expiry", options: short, probe: probe)
        LockProofLocking.sleep(seconds: 0.25)
        let next = try second.acquire("test:expiry", options: short.with(lease: 10_000), probe: probe)
        XCTAssertFalse(try first.release(stale, probe: probe), "a holder whose lease expired must not delete the lock")
        XCTAssertEqual(try TestServers.redis().command(["GET", "test:expiry"]).text, next.token, "the next holder keeps it")
        XCTAssertEqual(sink.count { $0 == .distributedLockLost }, 1)
        XCTAssertTrue(try second.release(next, probe: probe))
        XCTAssertEqual(try TestServers.redis().command(["EXISTS", "test:expiry"]), .integer(0))
    }

    func testFencingTokensOnlyGrow() throws {
        let locks = try Self.lockClient()
        var tokens: [Int64] = []
        for _ in 0..<5 {
            let handle = try locks.acquire("test:fence", options: .standard, probe: probe)
            tokens.append(handle.fencingToken)
            try locks.release(handle, probe: probe)
        }
        XCTAssertEqual(tokens, tokens.sorted())
        XCTAssertEqual(Set(tokens).count, tokens.count, "strictly increasing: \(tokens)")
        // Under contention too: every acquisition gets its own, larger token.
        let results = try runConcurrently(clients: 8, timeout: 60, setup: { _ in try Self.lockClient() }) { _, locks in
            try (0..<5).map { _ in
                try locks.withLock("test:fence", options: .standard, probe: Probe(caseName: "t")) { $0.fencingToken }
            }
        }
        let all = results.compactMap(\.value).flatMap { $0 }
        XCTAssertEqual(all.count, 40)
        XCTAssertEqual(Set(all).count, 40)
        XCTAssertGreaterThan(try XCTUnwrap(all.min()), try XCTUnwrap(tokens.max()))
    }

    func testWaitTimeoutIsTyped() throws {
        let holder = try Self.lockClient()
        let waiter = try Self.lockClient()
        let sink = RecordingEventSink()
        let handle = try holder.acquire("test:timeout", options: .standard, probe: probe)
        let options = DistributedLockOptions(leaseMilliseconds: 1_000, waitMilliseconds: 150, renewLease: false)
        XCTAssertThrowsError(try waiter.acquire("test:timeout", options: options, probe: Probe(caseName: "c", sink: sink))) {
            let timeout = $0 as? LockTimeout
            XCTAssertEqual(timeout?.key, "test:timeout")
            XCTAssertGreaterThanOrEqual(timeout?.waitedSeconds ?? 0, 0.15)
        }
        XCTAssertEqual(sink.count { $0 == .lockAcquireFailed(.redis, .timeout) }, 1)
        try holder.release(handle, probe: probe)
    }

    func testRenewalKeepsALongHoldersLock() throws {
        let holder = try Self.lockClient()
        let rival = try Self.lockClient()
        // Generous against a loaded machine: the watchdog renews every third of the lease.
        let renewing = DistributedLockOptions(leaseMilliseconds: 600, waitMilliseconds: 1_000, renewLease: true)
        let handle = try holder.acquire("test:renew", options: renewing, probe: probe)
        // Hold for four leases; a rival that waits through more than a lease must still be refused.
        LockProofLocking.sleep(seconds: 1.2)
        let patient = DistributedLockOptions(leaseMilliseconds: 600, waitMilliseconds: 1_200, renewLease: false)
        XCTAssertThrowsError(try rival.acquire("test:renew", options: patient, probe: probe)) { XCTAssertTrue($0 is LockTimeout) }
        XCTAssertEqual(try TestServers.redis().command(["GET", "test:renew"]).text, handle.token)
        XCTAssertTrue(try holder.release(handle, probe: probe), "still the holder after \(4) leases")
    }

    func testWithoutRenewalTheLeaseRunsOut() throws {
        // The negative control for renewal: the same hold without the watchdog loses the lock.
        let holder = try Self.lockClient()
        let options = DistributedLockOptions(leaseMilliseconds: 300, waitMilliseconds: 1_000, renewLease: false)
        let handle = try holder.acquire("test:norenew", options: options, probe: probe)
        LockProofLocking.sleep(seconds: 0.6)
        XCTAssertFalse(try holder.release(handle, probe: probe))
    }

    func testWaiterIsWokenByTheReleaseNotBeforeItsLeaseRunsOut() throws {
        let holder = try Self.lockClient()
        let waiter = try Self.lockClient()
        // The holder's lease (30 s) outlives the waiter's patience (10 s): only the release
        // notification can let the waiter in.
        let long = DistributedLockOptions(leaseMilliseconds: 30_000, waitMilliseconds: 10_000, renewLease: false)
        let handle = try holder.acquire("test:wake", options: long, probe: probe)
        let released = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            LockProofLocking.sleep(seconds: 0.2)
            _ = try? Self.lockClient().release(handle, probe: Probe(caseName: "t"))
            released.signal()
        }
        let acquired = try waiter.acquire("test:wake", options: long, probe: probe)
        released.wait()
        XCTAssertGreaterThan(acquired.fencingToken, handle.fencingToken)
        try waiter.release(acquired, probe: probe)
    }
}

extension DistributedLockOptions {
    func with(lease: Int) -> DistributedLockOptions {
        DistributedLockOptions(leaseMilliseconds: lease, waitMilliseconds: waitMilliseconds, renewLease: renewLease)
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func add(_ delta: Int) -> Int {
        value.withLock {
            $0 += delta
            return $0
        }
    }
}

/// A Redis counter's value (absent = 0); a non-number throws instead of crashing the test process.
private func counterValue(_ reply: RedisReply) throws -> Int {
    guard let value = Int(reply.text ?? "0") else { throw CounterNotANumber(text: reply.text ?? "") }
    return value
}

private struct CounterNotANumber: Error {
    let text: String
}
