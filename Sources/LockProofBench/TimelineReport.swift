import Foundation
import LockProofScenario

/// `verify`'s HTML report (report.html): the verdict of every scenario and, for every violation a
/// checker caught, a timeline of the operations around its first example, one lane per client,
/// each operation a bar from its start to its end coloured by outcome, as Jepsen's timeline does:
/// the reader sees the interleaving that lost the update.
public enum TimelineReport {
    /// Operations shown per timeline at most (memory and readability stay bounded).
    static let window = 40

    public static func write(_ results: [ScenarioResult], to directory: URL) throws {
        try ReportFile.write(page(results), named: "report.html", in: directory)
    }

    public static func page(_ results: [ScenarioResult]) -> String {
        var rows = ""
        var sections = ""
        for result in results {
            let verdict = result.status.rawValue.uppercased()
            let caught = result.checks.flatMap { $0.violations.map(\.name) }
            rows += "<tr class=\"\(verdict.lowercased())\"><td>\(html(result.scenario.name))</td><td>\(result.scenario.expect.rawValue)</td><td>\(verdict)</td><td>\(result.operations.total)</td><td>\(html(caught.joined(separator: ", ")))\(result.runError.map { " — " + html($0) } ?? "")</td></tr>\n"
            for check in result.checks {
                for violation in check.violations {
                    let operations: [HistoryEntry]
                    do {
                        operations = try history(around: violation.firstExample, in: result)
                    } catch {
                        sections += "<section class=\"violation\"><h2>\(html(result.scenario.name)): \(html(violation.name))</h2><p class=\"failed\">No timeline: \(html("\(error)"))</p></section>\n"
                        continue
                    }
                    let title = "\(result.scenario.name): \(violation.name) (×\(violation.count))"
                    sections += """
                        <section class="violation"><h2>\(html(title))</h2>
                        <p>Checker <b>\(html(check.name))</b>, first example: <code>\(html(violation.firstExample))</code>.
                        Showing \(operations.count) operation(s) \(html(focusDescription(violation.firstExample))).</p>
                        <figure class="plot" data-title="\(html(title))">\(svg(operations))</figure></section>

                        """
                }
            }
        }
        let errors = results.filter { $0.runError != nil }.count
        let abortedNote = errors == 0 ? "" : "<p class=\"failed\">\(errors) scenario(s) ended in an error (see the table).</p>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>LockProof verify report</title>
            <style>
            body { font-family: sans-serif; margin: 1.5em; color: #222; }
            table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; font-size: 13px; }
            tr.fail td, tr.error td { background: #fde8e8; } .failed { color: #b00; font-weight: bold; }
            figure.plot { margin: 0.5em 0; border: 1px solid #ddd; display: inline-block; }
            </style>
            \(plotCheckScript)
            </head><body>
            <h1>LockProof verify report</h1>
            \(abortedNote)
            <table><tr><th>scenario</th><th>expects</th><th>verdict</th><th>operations</th><th>violations caught</th></tr>
            \(rows)</table>
            <p>Timelines: one lane per client; each bar runs from an operation's start to its end (time in ms since the run began). Green: ok. Orange: fail (it did not happen). Grey: unknown (it may have happened). When the first example names a user, order, product or coupon, only the operations on it are shown, from just before the first two that overlapped. Hover a bar for its arguments and result.</p>
            \(sections.isEmpty ? "<p>No violation was caught.</p>" : sections)
            </body></html>

            """
    }

    /// The entity a violation's example names first (`user 17`, `order 5`, `product 3`, `coupon 1`).
    static func focus(_ example: String) -> (entity: String, id: Int)? {
        guard let range = example.range(of: "(user|order|product|coupon) [0-9]+", options: .regularExpression) else { return nil }
        let parts = example[range].split(separator: " ")
        return (String(parts[0]), Int(parts[1])!)
    }

    private static func focusDescription(_ example: String) -> String {
        focus(example).map { "around the first overlapping operations on \($0.entity) \($0.id) (or, when none names it, from the start of the run)" } ?? "from the start of the run"
    }

    static func touches(_ entry: HistoryEntry, _ focus: (entity: String, id: Int)) -> Bool {
        if entry.arguments[focus.entity] == focus.id { return true }
        if focus.entity == "product", entry.items?.contains(where: { $0.productId == focus.id }) == true { return true }
        if focus.entity == "user", entry.result?["user"] == focus.id { return true }
        return false
    }

    /// Reads from the run's history file the operations on the example's entity (or the first ones
    /// when it names none), bounded, then picks those around the race.
    static func history(around example: String, in result: ScenarioResult) throws -> [HistoryEntry] {
        guard let file = result.historyFile else {
            throw BenchError("the run kept no history file (run with --report-dir)")
        }
        let focus = focus(example)
        let entries = try readHistory(file, limit: focus == nil ? window : 20_000) { entry in
            focus.map { touches(entry, $0) } ?? true
        }
        // No operation names the entity (a payment names its order, not its products): the run's
        // first operations instead.
        if entries.isEmpty { return around("", in: try readHistory(file, limit: window)) }
        return around(example, in: entries)
    }

    /// The operations around the first two that overlapped in time on the example's entity (the
    /// race), or the first operations of the run when the example names no entity.
    static func around(_ example: String, in history: [HistoryEntry]) -> [HistoryEntry] {
        let sorted = history.sorted { ($0.start, $0.client) < ($1.start, $1.client) }
        guard let focus = focus(example) else { return Array(sorted.prefix(window)) }
        let related = sorted.filter { touches($0, focus) }
        guard !related.isEmpty else { return Array(sorted.prefix(window)) }
        var anchor = related[0]
        for (index, entry) in related.enumerated().dropFirst() where entry.start < related[index - 1].end {
            anchor = related[index - 1]
            break
        }
        let position = related.firstIndex(of: anchor) ?? 0
        let lower = max(0, position - window / 4)
        return Array(related[lower..<min(related.count, lower + window)])
    }

    static func svg(_ operations: [HistoryEntry]) -> String {
        guard let first = operations.map(\.start).min(), let last = operations.map(\.end).max() else {
            return "<svg width=\"400\" height=\"40\"><text x=\"10\" y=\"25\">no operations</text></svg>"
        }
        let clients = Array(Set(operations.map(\.client))).sorted()
        let laneHeight = 34.0
        let left = 80.0
        let width = 1100.0
        let span = max(last - first, 1e-6)
        func x(_ time: Double) -> Double { left + (time - first) / span * (width - left - 20) }
        var body = ""
        for (lane, client) in clients.enumerated() {
            let y = 20 + Double(lane) * laneHeight
            body += "<g class=\"lane\"><text x=\"4\" y=\"\(y + 18)\" font-size=\"11\">client \(client)</text>"
            body += "<line x1=\"\(left)\" y1=\"\(y + laneHeight - 4)\" x2=\"\(width - 20)\" y2=\"\(y + laneHeight - 4)\" stroke=\"#eee\"/>"
            for entry in operations where entry.client == client {
                let x0 = x(entry.start)
                let w = max(2, x(entry.end) - x0)
                let colour = entry.outcome == .ok ? "#6c6" : entry.outcome == .fail ? "#f93" : "#aaa"
                let arguments = entry.arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                let result = entry.result.map { $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") } ?? ""
                let label = "\(entry.operation) \(arguments) → \(entry.outcome.rawValue)\(entry.reason.map { " (\($0))" } ?? "") \(result)"
                let tip = String(format: "%@ [%.3f–%.3f ms]", label, entry.start * 1000, entry.end * 1000)
                body += "<rect x=\"\(fmt(x0))\" y=\"\(y + 4)\" width=\"\(fmt(w))\" height=\"\(laneHeight - 12)\" fill=\"\(colour)\" stroke=\"#333\" stroke-width=\"0.6\"><title>\(html(tip))</title></rect>"
                if w > 60 {
                    body += "<text x=\"\(fmt(x0 + 3))\" y=\"\(y + 19)\" font-size=\"9\">\(html(String(label.prefix(Int(w / 5.2)))))</text>"
                }
            }
            body += "</g>"
        }
        let height = 40 + Double(clients.count) * laneHeight
        body += "<text x=\"\(left)\" y=\"\(height - 4)\" font-size=\"10\">\(String(format: "%.3f ms", first * 1000))</text>"
        body += "<text x=\"\(width - 120)\" y=\"\(height - 4)\" font-size=\"10\">\(String(format: "%.3f ms", last * 1000))</text>"
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\">\(body)</svg>"
    }

    private static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}
