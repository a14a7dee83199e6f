import Foundation
import LockProofRedis
import LockProofSync

/// One subscriber connection per process, on its own thread, that wakes the waiters of a lock when
/// its holder releases it (as Redisson does with one pub/sub connection).
public final class LockReleaseNotifier: @unchecked Sendable {
    /// Replaced (under `condition`) when a failover moves the primary.
    private var connection: RedisConnection
    private let route: RedisRoute?
    private var routeGeneration = 0
    private let condition = WaitCondition()
    private var generations: [String: UInt64] = [:]
    /// Subscriptions confirmed again after a lost one: each wakes every waiter, whose key may have
    /// been released while no subscription heard it (else it would sleep out its holder's lease).
    private var resubscriptions: UInt64 = 0
    private var stopping = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    public init(endpoint: RedisEndpoint, route: RedisRoute? = nil) throws {
        // No read timeout: a timed-out read kills a hiredis context; `stop` interrupts the socket.
        connection = try RedisConnection(endpoint: endpoint, commandTimeout: 0)
        self.route = route
        routeGeneration = route?.primary.generation ?? 0
        try connection.send(["SUBSCRIBE", LockScripts.releaseChannel])
        _ = try connection.readReply()  // the subscribe confirmation
        let thread = Thread { [self] in run() }
        thread.name = "lockproof-lock-notifier"
        self.thread = thread
        thread.start()
    }

    private func run() {
        defer { stopped.signal() }
        while true {
            do {
                let message = try connection.readReply()
                if let items = message.array, items.first?.text == "subscribe" {
                    // The first confirmation was read by `init`: this one follows a lost subscription.
                    condition.lock()
                    resubscriptions &+= 1
                    condition.broadcast()
                    condition.unlock()
                    continue
                }
                guard let items = message.array, items.count == 3, items[0].text == "message",
                    let key = items[2].text
                else { continue }
                condition.lock()
                generations[key, default: 0] &+= 1
                condition.broadcast()
                condition.unlock()
            } catch {
                condition.lock()
                let done = stopping
                condition.unlock()
                if done { return }
                // Lost the subscription: resubscribe (to the new primary after a failover); waiters
                // meanwhile fall back to their lease bound, and are all woken once it is back.
                Foundation.Thread.sleep(forTimeInterval: 0.05)
                if let route, route.primary.generation != routeGeneration {
                    let (endpoint, generation) = route.primary
                    if let fresh = try? RedisConnection(endpoint: endpoint, commandTimeout: 0) {
                        condition.lock()
                        connection = fresh
                        routeGeneration = generation
                        condition.unlock()
                    }
                }
                try? connection.send(["SUBSCRIBE", LockScripts.releaseChannel])
                // `stop` may have interrupted the connection just replaced: look again before
                // blocking on the new one (a stop after this interrupts the new one).
                condition.lock()
                let stoppedMeanwhile = stopping
                condition.unlock()
                if stoppedMeanwhile { return }
            }
        }
    }

    func generation(of key: String) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return (generations[key] ?? 0) &+ resubscriptions
    }

    func wait(for key: String, changingFrom generation: UInt64, until deadline: Double) {
        condition.lock()
        defer { condition.unlock() }
        while (generations[key] ?? 0) &+ resubscriptions == generation && !stopping {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return }
            _ = condition.wait(until: Date(timeIntervalSinceNow: left))
        }
    }

    public func stop() {
        condition.lock()
        if stopping {
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        let connection = self.connection
        condition.unlock()
        connection.interrupt()
        stopped.wait()
    }

}
