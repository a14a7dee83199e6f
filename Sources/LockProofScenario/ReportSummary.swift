import Foundation

/// Colour on a terminal: green ✓ PASS, red ✗ FAIL. Plain (the default, and every report file)
/// changes nothing.
public struct TerminalStyle: Sendable {
    public let colour: Bool
    public init(colour: Bool) { self.colour = colour }
    public static let plain = TerminalStyle(colour: false)

    /// Colour when stdout is a terminal or CLICOLOR_FORCE is set (not "0"), unless --no-color or
    /// NO_COLOR (any non-empty value, https://no-color.org) says otherwise.
    public static func decide(noColorFlag: Bool, environment: [String: String], stdoutIsTerminal: Bool) -> TerminalStyle {
        if noColorFlag || !(environment["NO_COLOR"] ?? "").isEmpty { return .plain }
        let forced = environment["CLICOLOR_FORCE"].map { !$0.isEmpty && $0 != "0" } ?? false
        return TerminalStyle(colour: stdoutIsTerminal || forced)
    }

    public func good(_ text: String) -> String { colour ? "\u{1B}[32m" + text + "\u{1B}[0m" : text }
    public func bad(_ text: String) -> String { colour ? "\u{1B}[1;31m" + text + "\u{1B}[0m" : text }
    public func warning(_ text: String) -> String { colour ? "\u{1B}[33m" + text + "\u{1B}[0m" : text }
    /// `✓ ok` / `✗ FAILED` in colour; the word alone when plain.
    public func mark(_ passed: Bool, _ word: String) -> String {
        colour ? (passed ? good("✓ " + word) : bad("✗ " + word)) : word
    }
}

/// The text summary of a run and the verdict table, as printed on the terminal.
extension ReportWriter {
    /// pgbench-like: what ran, operations by outcome, throughput, latency percentiles, locks,
    /// retries, conflicts; then every check and threshold, then the verdict.
    public static func summary(_ result: ScenarioResult, style: TerminalStyle = .plain) -> String {
        let report = ScenarioReport(result)
        let workload = result.scenario.workload
        var lines: [String] = []
        lines.append("scenario: \(report.scenario) (\(report.file))")
        lines.append("case: \(report.case), strategy: \(report.strategy), expect: \(report.expect)")
        let bound = workload.iterations.map { "\($0) iterations each" } ?? "\(formatNumber(workload.durationSeconds ?? 0)) s"
        lines.append("virtual users: \(report.virtualUsers), \(bound), started at a barrier")
        lines.append("duration: \(String(format: "%.3f", report.durationSeconds)) s")
        let reasons = report.operations.failReasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append(
            "operations: \(report.operations.ok) ok, \(report.operations.fail) fail, \(report.operations.unknown) unknown\(reasons.isEmpty ? "" : " (\(reasons))")")
        lines.append("throughput: \(String(format: "%.1f", report.throughputPerSecond)) ops/s")
        let l = report.latencySeconds
        lines.append("latency: p50 \(ms(l.p50)), p95 \(ms(l.p95)), p99 \(ms(l.p99)), max \(ms(l.max))")
        for wait in report.lockWaitSeconds {
            lines.append("lock wait (\(wait.lock)): \(wait.count) waits, p50 \(ms(wait.p50)), p99 \(ms(wait.p99)), max \(ms(wait.max))")
        }
        for held in report.lockHeldSeconds {
            lines.append("lock held (\(held.lock)): \(held.count) holds, p50 \(ms(held.p50)), p99 \(ms(held.p99)), max \(ms(held.max))")
        }
        for wait in report.poolWaitSeconds {
            lines.append(
                "pool wait (\(wait.pool)): \(wait.borrows) borrows, p50 \(ms(wait.p50)), p99 \(ms(wait.p99)), max \(ms(wait.max)); "
                    + "\(wait.whileHoldingLock) while holding a Redis lock, adding \(String(format: "%.3f", wait.whileHoldingLockSeconds)) s to its holds")
        }
        let c = report.counters
        lines.append(
            "retries: \(c.retryAttempts) attempts, \(c.retryExhausted) exhausted; optimistic conflicts: \(c.optimisticConflicts)")
        lines.append(
            "deadlocks: \(c.deadlocks); serialization failures: \(c.serializationFailures); unique violations: \(c.uniqueViolations)")
        if c.compensationsSucceeded + c.compensationsFailed > 0 {
            lines.append("compensations: \(c.compensationsSucceeded) succeeded, \(c.compensationsFailed) failed")
        }
        if c.lockAcquireFailures + c.distributedLocksLost > 0 {
            lines.append("lock acquire failures: \(c.lockAcquireFailures); distributed locks lost: \(c.distributedLocksLost)")
        }
        if report.fencedWritesRefused > 0 {
            lines.append("fenced writes refused (stale fencing token): \(report.fencedWritesRefused)")
        }
        if let breaker = report.circuitBreaker, breaker.openings > 0 || breaker.bypassed > 0 {
            // Two counts that read alike: openings from closed (an outage), and every opening, a
            // failed probe's reopening included (the `circuit_breaker_openings` threshold's).
            let everyOpening = result.statistics.count(RunStatistics.circuitBreakerOpenings)
            let reopened = everyOpening > breaker.openings ? " (\(everyOpening)× with reopenings after a failed probe)" : ""
            lines.append(
                "redis circuit breaker: opened \(breaker.openings)× from closed\(reopened), open \(String(format: "%.2f", breaker.openSeconds)) s, \(breaker.bypassed) lock calls on database locks alone")
        }
        if let overlaps = report.lockOverlaps, overlaps.overlaps > 0 {
            lines.append(
                "two holders of one Redis lock: \(overlaps.overlaps)× (at most \(overlaps.maxHolders) at once; first \(overlaps.firstKey ?? "?"))")
        }
        if !report.faults.isEmpty {
            lines.append(contentsOf: faultTimeline(report.faults, runSeconds: report.durationSeconds))
        }
        if let r = report.recovery {
            lines.append(
                "recovery: \(r.interrupted) interrupted payments (\(r.markedPaid) marked PAID, \(r.compensated) compensated, \(r.stillOpen) still open); compensations pending \(r.compensationsPendingBefore) before, \(r.compensationsPendingAfter) after")
        }
        for check in report.checks {
            if let reason = check.notChecked {
                lines.append("check \(check.name): " + style.warning("NOT CHECKED") + " (\(reason))")
                continue
            }
            lines.append("check \(check.name): \(style.mark(check.passed, check.passed ? "ok" : "VIOLATED")) (\(check.summary))")
            for violation in check.violations {
                lines.append("  \(violation.name) ×\(violation.count), first: \(violation.firstExample)")
            }
        }
        // A control of the judging expects its thresholds to fail for want of a sample.
        let expectedToFail = result.scenario.expect == .unwitnessedThreshold
        for threshold in report.thresholds {
            let mark = threshold.passed ? "ok" : expectedToFail && threshold.observed == nil ? "FAILED (as this control expects)" : "FAILED"
            lines.append(
                "threshold \(threshold.metric) '\(threshold.expression)': \(style.mark(threshold.passed, mark)) — \(threshold.message)")
            if let warning = threshold.warning { lines.append("  " + style.warning("warning: \(warning)")) }
        }
        if let error = report.error { lines.append("error: \(error)") }
        if let expected = report.expectedError { lines.append("error (expected by this control): \(expected)") }
        let verdictText = verdict(result)
        lines.append("verdict: \(style.mark(result.status == .pass, verdictText))")
        return lines.joined(separator: "\n")
    }

    /// The faults on the run's time line: one bar per fault over the run's length.
    static func faultTimeline(_ faults: [FaultRecord], runSeconds: Double) -> [String] {
        let width = 40
        let span = max(runSeconds, faults.compactMap(\.end).max() ?? 0, 0.001)
        var lines = ["faults (time line 0 … \(String(format: "%.1f", span)) s):"]
        let nameWidth = faults.map(\.kind.count).max() ?? 0
        for fault in faults {
            let from = min(width - 1, Int(fault.start / span * Double(width)))
            let to = max(from + 1, min(width, Int(((fault.end ?? fault.start) / span * Double(width)).rounded(.up))))
            let bar = String(repeating: "·", count: from) + String(repeating: "█", count: to - from)
                + String(repeating: "·", count: width - to)
            let when = fault.end.map { String(format: "%.2f–%.2f s", fault.start, $0) } ?? String(format: "%.2f s", fault.start)
            var line = "  \(fault.kind.padding(toLength: nameWidth, withPad: " ", startingAt: 0)) |\(bar)| \(when)"
            if !fault.targets.isEmpty { line += ": " + fault.targets.joined(separator: "; ") }
            if let hits = fault.hits { line += " [\(hits) struck]" }
            lines.append(line)
            if let note = fault.note { lines.append("    \(note)") }
            if let error = fault.error { lines.append("    ERROR: \(error)") }
        }
        return lines
    }

    static func verdict(_ result: ScenarioResult) -> String {
        if let error = result.runError, !result.errorExpected { return "ERROR (\(error))" }
        if result.nothingTested { return "FAIL (\(nothingTestedMessage))" }
        switch (result.scenario.expect, result.passed) {
        case (.pass, true): return "PASS"
        case (.pass, false):
            let failed = result.checks.filter { !$0.passed }.map(\.name) + result.thresholds.filter { !$0.passed }.map { "\($0.metric) \($0.expression)" }
            return "FAIL (\(failed.joined(separator: "; ")))"
        case (.violation, true):
            return "PASS (violation caught as expected: \(result.checks.filter { !$0.passed }.map(\.name).joined(separator: ", ")))"
        case (.violation, false): return "FAIL (negative control: no check caught a violation)"
        case (.unwitnessedThreshold, true):
            return "PASS (judging control: every threshold watched a path that never ran, and each failed for want of a sample)"
        case (.unwitnessedThreshold, false):
            let vacuous = result.unwitnessedThresholdsPassing.map { "\($0.metric) \($0.expression): \($0.message)" }
            let checks = result.checks.filter { !$0.passed }.map(\.name)
            let why = vacuous.isEmpty ? "check caught a violation: \(checks.joined(separator: ", "))" : "judged on a value no path produced: " + vacuous.joined(separator: "; ")
            return "FAIL (judging control: \(why))"
        case (.faultError, true): return "PASS (judging control: the run was an error, as it must be: \(result.runError ?? ""))"
        case (.faultError, false):
            if result.faultError == nil { return "FAIL (judging control: the fault struck, so this control tested nothing)" }
            let checks = result.checks.filter { !$0.passed }.map(\.name)
            if !checks.isEmpty { return "FAIL (judging control: a check caught a violation: \(checks.joined(separator: ", ")))" }
            return "FAIL (judging control: the fault failed (\(result.faultError!)) but the run was judged as if it had been tested)"
        }
    }

    /// One row per scenario.
    public static func verdictTable(_ results: [ScenarioResult], style: TerminalStyle = .plain) -> String {
        let rows = results.map { result -> [String] in
            let report = ScenarioReport(result)
            return [
                report.scenario, report.case, report.strategy, report.expect, String(report.virtualUsers),
                "\(report.operations.ok)/\(report.operations.fail)/\(report.operations.unknown)",
                String(format: "%.0f", report.throughputPerSecond), ms(report.latencySeconds.p99),
                result.status.rawValue.uppercased()
                    + (result.checks.contains { $0.notChecked != nil }
                        ? " (\(result.checks.filter { $0.notChecked != nil }.count) not checked)" : ""),
            ]
        }
        let header = ["scenario", "case", "strategy", "expect", "vu", "ok/fail/unk", "ops/s", "p99", "verdict"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        func line(_ cells: [String], coloured: Bool = false) -> String {
            // The last column unpadded: no trailing blanks; coloured after padding.
            cells.enumerated().map {
                guard $0.offset == cells.count - 1 else { return $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                return coloured ? style.mark($0.element.hasPrefix("PASS"), $0.element) : $0.element
            }.joined(separator: "  ")
        }
        let passed = results.filter { $0.status == .pass }.count
        let failed = results.filter { $0.status == .fail }.count
        let errors = results.filter { $0.status == .error }.count
        var footer = "\(passed) passed, \(failed) failed, \(errors) \(errors == 1 ? "error" : "errors")"
        if let interrupted = results.first(where: \.interrupted) { footer += "; \(interrupted.runError ?? "interrupted")" }
        var lines = [line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map { line($0, coloured: true) } + [footer]
        // An error's reason under the table too: a reader of the table alone must not miss it.
        for result in results where result.status == .error { lines.append("error: \(result.scenario.name): \(result.runError!)") }
        return lines.joined(separator: "\n")
    }

    static let nothingTestedMessage = "nothing was tested: the run performed no operation"

    static func ms(_ seconds: Double?) -> String {
        guard let seconds else { return "n/a" }
        return String(format: seconds < 0.01 ? "%.2f ms" : "%.1f ms", seconds * 1000)
    }
}
