import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A live progress line on a terminal (rewritten in place every 0.5 s), plain lines every 5 s
/// otherwise; on standard error, so that reports on standard output stay clean.
public final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let interactive: Bool
    private let enabled: Bool
    private var done = 0
    private var failed = 0
    private var scenario = ""
    private var expected: Int?
    private var duration: Double?
    private var started = 0.0
    private var running = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    public init(enabled: Bool = true, interactive: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
        self.interactive = interactive
    }

    func begin(scenario: String, expectedOperations: Int?, durationSeconds: Double?) {
        lock.lock()
        self.scenario = scenario
        expected = expectedOperations
        duration = durationSeconds
        done = 0
        failed = 0
        started = Date().timeIntervalSince1970
        running = true
        lock.unlock()
        guard enabled else { return }
        let thread = Thread { [self] in loop() }
        thread.name = "lockproof-progress"
        self.thread = thread
        thread.start()
    }

    func operationFinished(failed isFailure: Bool) {
        lock.lock()
        done += 1
        if isFailure { failed += 1 }
        lock.unlock()
    }

    func end() {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
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
            lock.lock()
            let isRunning = running
            lock.unlock()
            if !isRunning { return }
            if Date().timeIntervalSince1970 >= next {
                next += interval
                let line = status()
                FileHandle.standardError.write((interactive ? "\r\u{1B}[2K" + line : line + "\n").data(using: .utf8)!)
            }
        }
    }

    private func status() -> String {
        lock.lock()
        defer { lock.unlock() }
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
