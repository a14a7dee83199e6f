import Foundation
import LockProofSync

#if canImport(Glibc)
    import Glibc
#endif

/// Which connections are still waiting for their request to arrive in full, since when; a reaper
/// thread shuts down the socket of those past the bound. libmicrohttpd then sees the connection end
/// and closes it itself: the socket is never closed behind its back. The lock is held while shutting
/// down, and `closed` (called before libmicrohttpd closes the socket) takes it too, so a socket
/// number is never shut down after it was reused.
final class ConnectionTracker: @unchecked Sendable {
    private struct Entry {
        let socket: Int32
        var waitingSince: Double?
    }
    let arrivalSeconds: Double
    private let condition = WaitCondition()
    private var entries: [OpaquePointer: Entry] = [:]
    private var reaping = false
    private var reaperRunning = false
    /// Connections cut off for a request that did not arrive in time (for tests and diagnostics).
    private(set) var disconnectedSlowSenders = 0

    init(arrivalSeconds: Double) { self.arrivalSeconds = arrivalSeconds }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    func started(_ connection: OpaquePointer, socket: Int32) {
        condition.lock()
        entries[connection] = Entry(socket: socket, waitingSince: Self.now())
        condition.unlock()
    }

    func closed(_ connection: OpaquePointer) {
        condition.lock()
        entries[connection] = nil
        condition.broadcast()
        condition.unlock()
    }

    func requestArrived(_ connection: OpaquePointer) {
        condition.lock()
        entries[connection]?.waitingSince = nil
        condition.unlock()
    }

    func awaitNextRequest(_ connection: OpaquePointer) {
        condition.lock()
        entries[connection]?.waitingSince = Self.now()
        condition.broadcast()
        condition.unlock()
    }

    /// Waits, at most `timeoutSeconds`, until no request is between its arrival and the end of
    /// its response: stopping the daemon closes connections, and would cut off a response being
    /// sent (a run's final scrape). Idle keep-alive connections do not count.
    func waitForRequestsInFlight(timeoutSeconds: Double) {
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        condition.lock()
        defer { condition.unlock() }
        while entries.values.contains(where: { $0.waitingSince == nil }), Date() < deadline {
            _ = condition.wait(until: deadline)
        }
    }

    var openConnections: Int {
        condition.lock()
        defer { condition.unlock() }
        return entries.count
    }

    func startReaping() {
        condition.lock()
        defer { condition.unlock() }
        guard !reaping, arrivalSeconds > 0 else { return }
        reaping = true
        reaperRunning = true
        let thread = Thread { [self] in reap() }
        thread.name = "lockproof-http-reaper"
        thread.start()
    }

    func stopReaping() {
        condition.lock()
        reaping = false
        condition.broadcast()
        while reaperRunning { condition.wait() }
        condition.unlock()
    }

    private func reap() {
        condition.lock()
        defer {
            reaperRunning = false
            condition.broadcast()
            condition.unlock()
        }
        let period = min(1, max(0.05, arrivalSeconds / 4))
        while reaping {
            _ = condition.wait(until: Date(timeIntervalSinceNow: period))
            guard reaping else { return }
            let deadline = Self.now() - arrivalSeconds
            for (connection, entry) in entries {
                guard let since = entry.waitingSince, since < deadline, entry.socket >= 0 else { continue }
                shutdown(entry.socket, Int32(SHUT_RDWR))
                entries[connection]?.waitingSince = nil
                disconnectedSlowSenders += 1
            }
        }
    }
}
