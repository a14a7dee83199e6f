import Foundation
import LockProofLocking
import LockProofRedis
import LockProofTestSupport
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func testOpensAfterTheThresholdProbesAfterTheCoolDownAndClosesOnSuccess() {
        let breaker = CircuitBreaker(options: CircuitBreakerOptions(failureThreshold: 3, coolDownSeconds: 0.05))
        XCTAssertEqual(breaker.permission().0, .call)
        XCTAssertNil(breaker.recordFailure())
        XCTAssertNil(breaker.recordFailure())
        XCTAssertEqual(breaker.recordFailure(), .open, "the third consecutive failure opens it")
        XCTAssertEqual(breaker.permission().0, .bypass, "open: Redis is skipped during the cool-down")
        LockProofLocking.sleep(seconds: 0.08)
        let (probe, changed) = breaker.permission()
        XCTAssertEqual(probe, .probe)
        XCTAssertEqual(changed, .halfOpen)
        XCTAssertEqual(breaker.permission().0, .bypass, "one probe at a time")
        XCTAssertEqual(breaker.recordFailure(), .open, "a failed probe opens it again")
        LockProofLocking.sleep(seconds: 0.08)
        XCTAssertEqual(breaker.permission().0, .probe)
        XCTAssertEqual(breaker.recordSuccess(), .closed)
        XCTAssertEqual(breaker.permission().0, .call)
        XCTAssertEqual(breaker.openCount, 1, "reopening from half-open is the same outage")
        XCTAssertEqual(breaker.bypassCount, 2)
        XCTAssertGreaterThan(breaker.openSeconds, 0.1)
    }

    func testSuccessResetsTheFailureCount() {
        let breaker = CircuitBreaker(options: CircuitBreakerOptions(failureThreshold: 2, coolDownSeconds: 1))
        breaker.recordFailure()
        breaker.recordSuccess()
        XCTAssertNil(breaker.recordFailure(), "failures must be consecutive")
        XCTAssertEqual(breaker.state, .closed)
    }

    /// A real redis-server goes down mid-use and comes back: calls fall back to "no Redis lock"
    /// (the database locks alone), the breaker opens, and a probe closes it once Redis is back.
    func testRedisDownFallsBackAndRecovers() throws {
        let spare = SpareRedis()
        try spare.start()
        defer { spare.stop() }
        let breaker = CircuitBreaker(options: CircuitBreakerOptions(failureThreshold: 2, coolDownSeconds: 0.2))
        let locks = DistributedLockClient(
            redis: try RedisConnection(endpoint: RedisEndpoint(port: spare.port), commandTimeout: 1), breaker: breaker)
        let sink = RecordingEventSink()
        let probe = Probe(caseName: "charge-balance", sink: sink)
        let options = DistributedLockOptions(leaseMilliseconds: 2_000, waitMilliseconds: 1_000, renewLease: false)

        XCTAssertNotNil(try locks.withLockOrFallback("test:breaker", options: options, probe: probe) { $0 })
        spare.stop()
        var handles: [LockHandle?] = []
        for _ in 0..<4 { handles.append(try locks.withLockOrFallback("test:breaker", options: options, probe: probe) { $0 }) }
        XCTAssertTrue(handles.allSatisfy { $0 == nil }, "every call ran without the Redis lock")
        XCTAssertEqual(breaker.state, .open)
        XCTAssertEqual(sink.count { $0 == .circuitBreaker(.open) }, 1)
        XCTAssertEqual(sink.count { $0 == .redisLockBypassed }, 4)

        try spare.start()
        LockProofLocking.sleep(seconds: 0.3)
        let probed = try locks.withLockOrFallback("test:breaker", options: options, probe: probe) { $0 }
        XCTAssertNotNil(probed, "the half-open probe took the Redis lock")
        XCTAssertEqual(breaker.state, .closed)
        XCTAssertEqual(sink.count { $0 == .circuitBreaker(.halfOpen) }, 1)
        XCTAssertEqual(sink.count { $0 == .circuitBreaker(.closed) }, 1)
    }

    /// A lock wait that runs out is an answer from Redis, not a failure: it neither opens the
    /// breaker nor skips the lock.
    func testLockTimeoutIsNotARedisFailure() throws {
        try TestServers.redis().checked(["SET", "test:held", "someone", "PX", "5000"])
        defer { _ = try? TestServers.redis().checked(["DEL", "test:held"]) }
        let breaker = CircuitBreaker(options: CircuitBreakerOptions(failureThreshold: 1, coolDownSeconds: 10))
        let locks = DistributedLockClient(redis: try TestServers.redis(), breaker: breaker)
        let options = DistributedLockOptions(leaseMilliseconds: 1_000, waitMilliseconds: 50, renewLease: false)
        XCTAssertThrowsError(try locks.withLockOrFallback("test:held", options: options, probe: Probe(caseName: "t")) { _ in 1 }) {
            XCTAssertTrue($0 is LockTimeout, "\($0)")
        }
        XCTAssertEqual(breaker.state, .closed)
    }
}
