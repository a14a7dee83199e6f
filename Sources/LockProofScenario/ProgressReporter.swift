import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A live progress line on a terminal (rewritten in place every 0.5 s), plain lines every 5 s
/// otherwise; on standard error, so that reports on standard output stay clean.
public final class ProgressReporter: @unchecked Sendable {
    private struct State {
        var done = 0
        var failed = 0
        var scenario = ""
        var expected: Int?
        var duration: Double?
        var started = 0.0
        var running = false
    }

    private let state = Mutex(State())
    private let interactive: Bool
    private let enabled: Bool
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    public init(enabled: Bool = true, interactive: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
        self.interactive = interactive
    }

    func begin(scenario: String, expectedOperations: Int?, durationSeconds: Double?) {
        state.withLock {
            $0.scenario = scenario
            $0.expected = expectedOperations
            $0.duration = durationSeconds
            $0.done = 0
            $0.failed = 0
            $0.started = Date().timeIntervalSince1970
            $0.running = true
        }
        guard enabled else { return }
        let thread = Thread { [self] in loop() }
        thread.name = "lockproof-progress"
        self.thread = thread
        thread.start()
    }

    func operationFinished(failed isFailure: Bool) {
        state.withLock {
            $0.done += 1
            if isFailure { $0.failed += 1 }
        }
    }

    func end() {
        let wasRunning = state.withLock {
            let wasRunning = $0.running
            $0.running = false
            return wasRunning
        }
        guard enabled, wasRunning else { return }
        stopped.wait()
        if interactive { FileHandle.standardError.write("\r\u{1B}[2K".data(using: .utf8)!) }
    }

    private func loop() {
        defer { stopped.signal() }
        let interval = interactive ? 0.5 : 5.0
        var next = Date().timeIntervalSince1970 + interval
        while true {
            Thread.sleep(forTimeInterval: 0.1)
            let isRunning = state.withLock { $0.running }
            if !isRunning { return }
            if Date().timeIntervalSince1970 >= next {
                next += interval
                let line = status()
                FileHandle.standardError.write((interactive ? "\r\u{1B}[2K" + line : line + "\n").data(using: .utf8)!)
            }
        }
    }

    private func status() -> String {
        let (done, failed, scenario, expected, duration, started) = state.withLock {
            ($0.done, $0.failed, $0.scenario, $0.expected, $0.duration, $0.started)
        }
        let elapsed = Date().timeIntervalSince1970 - started
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var line = "\(scenario): \(done)"
        if let expected { line += "/\(expected)" }
        line += " ops, \(Int(rate.rounded())) ops/s, \(failed) errors, \(String(format: "%.1f", elapsed)) s"
        if let duration {
            line += " of \(String(format: "%.0f", duration)) s"
        } else if let expected, done > 0, rate > 0 {
            line += ", ~\(String(format: "%.0f", Double(expected - done) / rate)) s left"
        }
        return line
    }
}
