import Foundation
import LockProofSync

/// A background thread of its own that runs `body` every `intervalSeconds` until `stop`: for
/// pollers that make blocking calls (a database session of their own), which must stay off Swift
/// concurrency's cooperative pool. `stop` wakes the thread at once and waits for a pass in progress
/// to end, so nothing runs after it returns.
public final class PeriodicThread: @unchecked Sendable {
    public enum FirstPass: Sendable {
        /// The first pass runs as soon as the thread starts (a gauge that must be right at once).
        case atStart
        /// The first pass runs one interval after the start (work that must age first).
        case afterInterval
    }

    public let intervalSeconds: Double
    private let name: String
    private let firstPass: FirstPass
    private let body: @Sendable () -> Void
    private let condition = WaitCondition()
    private var stopping = false
    private var started = false
    private let finished = DispatchSemaphore(value: 0)

    /// Any positive interval works, `.infinity` included (the body then runs only `.atStart`).
    public init(name: String, intervalSeconds: Double, firstPass: FirstPass, body: @escaping @Sendable () -> Void) {
        precondition(intervalSeconds > 0, "the interval of \(name) must be positive")
        self.name = name
        self.intervalSeconds = intervalSeconds
        self.firstPass = firstPass
        self.body = body
    }

    /// Starts the thread; a second call does nothing.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    /// Stops the thread and waits for it to end (at most one pass in progress).
    public func stop() {
        condition.lock()
        let wasRunning = started && !stopping
        stopping = true
        condition.broadcast()
        condition.unlock()
        if wasRunning { finished.wait() }
    }

    private func loop() {
        defer { finished.signal() }
        if firstPass == .atStart { body() }
        while true {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: intervalSeconds)
            while !stopping && Date() < deadline {
                // However far the deadline (an interval of 1e10 s, .infinity): WaitCondition waits it
                // out in slices, so the wait never traps.
                condition.wait(until: deadline)
            }
            let done = stopping
            condition.unlock()
            if done { return }
            body()
        }
    }
}
