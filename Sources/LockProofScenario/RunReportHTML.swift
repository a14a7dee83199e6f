import Foundation

/// `run`'s and `verify`'s HTML report (report.html), the page CI keeps: a table of what every
/// scenario measured and its verdict; for every scenario that failed, caught a violation or broke,
/// why: each failed threshold with its observed value against its limit, the run's figures as the
/// terminal prints them, and one section per distinct anomaly — named, said in one sentence with
/// the numbers, and drawn as a timeline (one lane per client, each operation a bar from its start
/// to its end; the operations that make up the anomaly numbered and red, the nemesis' fault
/// windows on the same time axis).
public enum RunReportHTML {
    /// Operations shown per timeline at most (memory and readability stay bounded).
    static let window = 40
    /// Operations shown beside the marked ones, at most: the context of the race, not the run.
    static let context = 14
    /// History entries read per anomaly at most.
    static let readLimit = 20_000

    public static func write(_ results: [ScenarioResult], to directory: URL) throws {
        try ReportFile.write(page(results), named: "report.html", in: directory)
    }

    public static func page(_ results: [ScenarioResult]) -> String {
        let rows = results.map(tableRow).joined(separator: "\n")
        // A run with a checker that could not judge it gets its section too: not checked is never a silent pass.
        let sections = results.filter { $0.status != .pass || $0.violationCaught || $0.checks.contains { $0.notChecked != nil } }
            .map(section).joined(separator: "\n")
        let counts = [ScenarioResult.Status.pass, .fail, .error].map { status in "\(results.filter { $0.status == status }.count) \(status.rawValue)" }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>LockProof report</title>
            <style>
            body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1250px; }
            table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; font-size: 13px; }
            td.n { text-align: right; font-variant-numeric: tabular-nums; }
            tr.fail td, tr.error td { background: #fde8e8; } .verdict-fail, .verdict-error { color: #b00; font-weight: bold; }
            .verdict-pass { color: #060; font-weight: bold; }
            section.scenario { border-top: 2px solid #ccc; margin-top: 1.5em; }
            p.sentence { font-size: 17px; background: #fff3f3; border-left: 5px solid #c22; padding: 6px 10px; }
            ul.why li { margin: 2px 0; } .failed { color: #b00; font-weight: bold; } .warning { color: #8a5a00; }
            figure.plot { margin: 0.5em 0; border: 1px solid #ddd; display: inline-block; }
            ol.marked { font-size: 13px; } ol.marked li.lost { color: #a00; }
            .legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
            .legend i { display: inline-block; width: 14px; height: 10px; border: 1px solid #333; margin-right: 4px; vertical-align: middle; }
            </style>
            \(pageCheckScript)
            </head><body>
            <h1>LockProof report</h1>
            <p>\(results.count) scenario(s): \(counts.joined(separator: ", ")).</p>
            <table><tr><th>scenario</th><th>expects</th><th>verdict</th><th>ok / fail / unknown</th><th>ops/s</th><th>p50</th><th>p99</th><th>why</th></tr>
            \(rows)
            </table>
            \(sections)
            </body></html>

            """
    }

    private static func tableRow(_ result: ScenarioResult) -> String {
        let report = ScenarioReport(result)
        let status = result.status.rawValue
        let o = report.operations
        return "<tr class=\"\(status)\"><td>\(html(report.scenario))</td><td>\(html(report.expect))</td>"
            + "<td class=\"verdict-\(status)\">\(status.uppercased())</td><td class=\"n\">\(o.ok) / \(o.fail) / \(o.unknown)</td>"
            + "<td class=\"n\">\(String(format: "%.1f", report.throughputPerSecond))</td><td class=\"n\">\(ReportWriter.ms(report.latencySeconds.p50))</td>"
            + "<td class=\"n\">\(ReportWriter.ms(report.latencySeconds.p99))</td><td>\(html(ReportWriter.verdict(result) + notChecked(result)))</td></tr>"
    }

    /// "; not checked: compensation, …" when a checker could not judge the run (a target's).
    private static func notChecked(_ result: ScenarioResult) -> String {
        let names = result.checks.filter { $0.notChecked != nil }.map(\.name)
        return names.isEmpty ? "" : "; not checked: " + names.joined(separator: ", ")
    }

    /// Why a scenario failed, or what it caught: the reasons first, then the figures, then the anomalies.
    static func section(_ result: ScenarioResult) -> String {
        let report = ScenarioReport(result)
        // A broken run's reason is long: it is the first line below, not the heading.
        let heading = result.runError == nil || result.errorExpected ? ReportWriter.verdict(result) : "ERROR"
        var out = "<section class=\"scenario\"><h2>\(html(report.scenario)) — <span class=\"verdict-\(result.status.rawValue)\">\(html(heading))</span></h2>\n"
        out += "<p>\(html(report.description))</p>\n"
        var reasons: [String] = []
        if let error = report.error { reasons.append("the run broke: \(html(error))") }
        if result.nothingTested && report.error == nil { reasons.append(html(ReportWriter.nothingTestedMessage)) }
        let judgingControl = result.scenario.expect.controlsTheJudging
        if judgingControl && !result.passed && report.error == nil {
            reasons.append(html(ReportWriter.verdict(result)))
        }
        for threshold in report.thresholds where !threshold.passed && !judgingControl {
            // The message holds the observed value against the limit ("latency p(99) = 37ms breaks < 500us").
            reasons.append("threshold <b>\(html(threshold.metric)) \(html(threshold.expression))</b> failed: \(html(threshold.message))")
        }
        if result.scenario.expect == .violation && !result.violationCaught && report.error == nil {
            reasons.append("negative control: no check caught a violation, so the checkers did not prove they can")
        }
        if result.scenario.expect == .pass {
            for check in report.checks where !check.passed {
                reasons.append("check <b>\(html(check.name))</b> caught a violation (below)")
            }
        }
        if let target = report.target { out += "<p>Through the target <code>\(html(target))</code> (its API and its own database).</p>\n" }
        if !reasons.isEmpty { out += "<ul class=\"why\">" + reasons.map { "<li class=\"failed\">\($0)</li>" }.joined() + "</ul>\n" }
        let unchecked = report.checks.compactMap { check in
            check.notChecked.map { "<li class=\"warning\">check <b>\(html(check.name))</b>: not checked — \(html($0))</li>" }
        }
        if !unchecked.isEmpty { out += "<ul class=\"why\">" + unchecked.joined() + "</ul>\n" }
        // A threshold judged on too few samples, passed or not: the terminal's warning, here too.
        let warnings = report.thresholds.compactMap(\.warning)
        if !warnings.isEmpty { out += "<ul class=\"why\">" + warnings.map { "<li class=\"warning\">warning: \(html($0))</li>" }.joined() + "</ul>\n" }
        // The run's figures, as the terminal prints them.
        let prefixes = ["operations:", "throughput:", "latency:", "retries:", "deadlocks:", "lock wait", "lock held", "pool wait", "two holders", "recovery:"]
        var figures = ReportWriter.summary(result).split(separator: "\n").map(String.init).filter { line in prefixes.contains { line.hasPrefix($0) } }
        if !report.faults.isEmpty { figures += ReportWriter.faultTimeline(report.faults, runSeconds: report.durationSeconds) }
        out += "<pre class=\"figures\">\(html(figures.joined(separator: "\n")))</pre>\n"
        let anomalies = AnomalyExplainer.anomalies(result) { violation in
            guard let file = result.historyFile else { throw HistoryReadError(message: "the run kept no history file (run with --report-dir)") }
            let subject = AnomalyExplainer.subject(of: violation)
            return try readHistory(file, limit: readLimit) { subject.isEmpty || AnomalyExplainer.touches($0, subject) }
        }
        for (anomaly, failure) in anomalies {
            out += anomalySection(anomaly, result: result, failure: failure)
        }
        return out + "</section>"
    }

    static func anomalySection(_ anomaly: Anomaly, result: ScenarioResult, failure: Error?) -> String {
        let title = anomaly.subject.isEmpty ? "\(anomaly.name) in the run" : "\(anomaly.name) on \(anomaly.subjectDescription)"
        var out = "<h3>\(html(title.prefix(1).uppercased() + title.dropFirst()))</h3>\n"
        out += "<p class=\"sentence\"><b>\(html(anomaly.name.prefix(1).uppercased() + anomaly.name.dropFirst())):</b> \(html(anomaly.sentence))</p>\n"
        out += "<p>Caught by \(anomaly.violations.map { "<code>\(html($0))</code>" }.joined(separator: ", ")).</p>\n"
        if let failure {
            return out + "<p class=\"failed\">No timeline: \(html("\(failure)"))</p>\n"
        }
        let operations: [HistoryEntry]
        let faults: [FaultWindow]
        do {
            operations = try timelineOperations(anomaly, result: result)
            // The fault windows come from the nemesis' entries of the same history.
            faults = try result.historyFile.map { FaultWindow.windows(try readNemesisEntries($0)) } ?? []
        } catch {
            return out + "<p class=\"failed\">No timeline: \(html("\(error)"))</p>\n"
        }
        if operations.isEmpty { return out + "<p>No operation in the history names \(html(anomaly.subjectDescription)).</p>\n" }
        out += "<figure class=\"plot\" data-title=\"\(html(title))\">\(svg(operations, marked: anomaly.marked, faults: faults))</figure>\n"
        out += legend
        if !anomaly.marked.isEmpty {
            let byKey = Dictionary(operations.map { ("\($0.client)/\($0.index)", $0) }, uniquingKeysWith: { first, _ in first })
            out += "<ol class=\"marked\">" + anomaly.marked.map { mark in
                let entry = byKey["\(mark.client)/\(mark.index)"]
                let when = entry.map { String(format: " [%.3f–%.3f ms]", $0.start * 1000, $0.end * 1000) } ?? ""
                return "<li class=\"\(mark.lost ? "lost" : "kept")\">client \(mark.client), operation \(mark.index): \(html(mark.role))\(when)</li>"
            }.joined() + "</ol>\n"
        }
        return out
    }

    static let legend = """
        <p class="legend"><span><i style="background:#e33"></i>part of the anomaly: lost, or should not have succeeded</span><span><i style="background:#f6b26b"></i>part of it: the write that stayed</span><span><i style="background:#b7dfb7"></i>other ok</span><span><i style="background:#fbeea0"></i>fail</span><span><i style="background:#bbb"></i>unknown</span><span><i style="background:rgba(80,80,200,0.18)"></i>fault window</span></p>

        """

    /// The operations on the anomaly's subject around the ones marked (or, with none marked, the
    /// first ones that overlapped), at most `window`.
    static func timelineOperations(_ anomaly: Anomaly, result: ScenarioResult) throws -> [HistoryEntry] {
        guard let file = result.historyFile else { throw HistoryReadError(message: "the run kept no history file (run with --report-dir)") }
        let marked = Set(anomaly.marked.map { "\($0.client)/\($0.index)" })
        let entries = try readHistory(file, limit: readLimit) { entry in
            marked.contains("\(entry.client)/\(entry.index)") || anomaly.subject.isEmpty || AnomalyExplainer.touches(entry, anomaly.subject)
        }
        return around(entries, marked: marked)
    }

    /// Around the marked operations: those that overlap their time span, widened by a third of it
    /// either side; the marked always kept. Without marks: from just before the first two overlapping.
    static func around(_ history: [HistoryEntry], marked: Set<String>) -> [HistoryEntry] {
        let sorted = history.sorted { ($0.start, $0.client) < ($1.start, $1.client) }
        let core = sorted.filter { marked.contains("\($0.client)/\($0.index)") }
        guard let from = core.map(\.start).min(), let to = core.map(\.end).max() else {
            var anchor = 0
            for index in sorted.indices.dropFirst() where sorted[index].start < sorted[index - 1].end {
                anchor = index - 1
                break
            }
            let lower = max(0, anchor - window / 4)
            return Array(sorted[lower..<min(sorted.count, lower + window)])
        }
        let pad = (to - from) / 3
        let nearby = sorted.filter { !marked.contains("\($0.client)/\($0.index)") && $0.end >= from - pad && $0.start <= to + pad }
        let room = max(0, min(context, window - core.count))
        // The nearest to the marked span first.
        let middle = (from + to) / 2
        let kept = nearby.sorted { abs(($0.start + $0.end) / 2 - middle) < abs(($1.start + $1.end) / 2 - middle) }.prefix(room)
        return (core + kept).sorted { ($0.start, $0.client) < ($1.start, $1.client) }
    }

    /// A time step of 1, 2 or 5 × 10ⁿ ms giving about `target` ticks over `span` ms.
    static func tickStep(span: Double, target: Int = 8) -> Double {
        let raw = max(span, 1e-6) / Double(target)
        let magnitude = pow(10, floor(log10(raw)))
        for factor in [1.0, 2.0, 5.0, 10.0] where raw <= factor * magnitude { return factor * magnitude }
        return 10 * magnitude
    }

    static func svg(_ operations: [HistoryEntry], marked: [MarkedOperation], faults: [FaultWindow]) -> String {
        guard let first = operations.map(\.start).min(), let last = operations.map(\.end).max() else { return "" }
        let numbers = Dictionary(marked.enumerated().map { ("\($1.client)/\($1.index)", ($0 + 1, $1)) }, uniquingKeysWith: { first, _ in first })
        let clients = Array(Set(operations.map(\.client))).sorted()
        let laneHeight = 26.0, left = 74.0, right = 20.0, width = 1180.0, top = 24.0
        let span = max(last - first, 1e-6)
        func x(_ time: Double) -> Double { left + (time - first) / span * (width - left - right) }
        let lanesBottom = top + Double(clients.count) * laneHeight
        let height = lanesBottom + 34
        var body = ""
        // Fault windows first, behind the bars, on the same axis.
        for fault in faults {
            let end = fault.end ?? last
            guard end >= first, fault.start <= last else { continue }
            let x0 = x(max(fault.start, first)), x1 = x(min(end, last))
            body += "<g class=\"fault\"><rect x=\"\(fmt(x0))\" y=\"\(top - 14)\" width=\"\(fmt(max(2, x1 - x0)))\" height=\"\(fmt(lanesBottom - top + 14))\" fill=\"rgba(80,80,200,0.18)\" stroke=\"#55c\" stroke-dasharray=\"4 3\"/>"
            body += "<text x=\"\(fmt(x0 + 3))\" y=\"\(top - 4)\" font-size=\"11\" fill=\"#33a\">\(html(fault.fault))</text></g>"
        }
        for (lane, client) in clients.enumerated() {
            let y = top + Double(lane) * laneHeight
            body += "<g class=\"lane\"><text x=\"4\" y=\"\(fmt(y + 16))\" font-size=\"11\">client \(client)</text>"
            body += "<line x1=\"\(left)\" y1=\"\(fmt(y + laneHeight - 2))\" x2=\"\(width - right)\" y2=\"\(fmt(y + laneHeight - 2))\" stroke=\"#eee\"/>"
            for entry in operations where entry.client == client {
                let x0 = x(entry.start)
                let w = max(3, x(entry.end) - x0)
                let mark = numbers["\(entry.client)/\(entry.index)"]
                let colour: String
                switch (mark?.1.lost, entry.outcome) {
                case (true?, _): colour = "#e33"
                case (false?, _): colour = "#f6b26b"
                case (nil, .ok): colour = "#b7dfb7"
                case (nil, .fail): colour = "#fbeea0"
                case (nil, .unknown): colour = "#bbb"
                }
                let tip = String(format: "%@ [%.3f–%.3f ms]", describe(entry), entry.start * 1000, entry.end * 1000)
                body += "<rect x=\"\(fmt(x0))\" y=\"\(fmt(y + 3))\" width=\"\(fmt(w))\" height=\"\(fmt(laneHeight - 8))\" fill=\"\(colour)\" stroke=\"#333\" stroke-width=\"\(mark == nil ? 0.5 : 1.5)\"><title>\(html(tip))</title></rect>"
                // A label only where it fits whole (the list under the figure and the tooltip say the rest).
                let label = mark.map { "\($0.0) · \($0.1.role)" } ?? shortLabel(entry)
                if Double(label.count) * 6.2 < w - 6 {
                    body += "<text x=\"\(fmt(x0 + 3))\" y=\"\(fmt(y + 16))\" font-size=\"11\"\(mark == nil ? "" : " font-weight=\"bold\"")>\(html(label))</text>"
                } else if let mark {
                    body += "<text x=\"\(fmt(x0 + w / 2))\" y=\"\(fmt(y + 16))\" font-size=\"12\" font-weight=\"bold\" text-anchor=\"middle\">\(mark.0)</text>"
                }
            }
            body += "</g>"
        }
        // The time axis: ticks at 1, 2 or 5 × 10ⁿ ms since the run began.
        let step = tickStep(span: span * 1000)
        body += "<line x1=\"\(left)\" y1=\"\(fmt(lanesBottom + 2))\" x2=\"\(width - right)\" y2=\"\(fmt(lanesBottom + 2))\" stroke=\"#333\"/>"
        var tick = (first * 1000 / step).rounded(.up) * step
        let decimals = step >= 1 ? 0 : Int(ceil(-log10(step)))
        while tick <= last * 1000 + 1e-9 {
            let tx = x(tick / 1000)
            body += "<line x1=\"\(fmt(tx))\" y1=\"\(fmt(lanesBottom + 2))\" x2=\"\(fmt(tx))\" y2=\"\(fmt(lanesBottom + 7))\" stroke=\"#333\"/>"
            body += "<text x=\"\(fmt(tx))\" y=\"\(fmt(lanesBottom + 19))\" font-size=\"10\" text-anchor=\"middle\">\(String(format: "%.\(decimals)f", tick))</text>"
            tick += step
        }
        body += "<text x=\"\(width - right)\" y=\"\(fmt(height - 2))\" font-size=\"10\" text-anchor=\"end\">ms since the run began</text>"
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\">\(body)</svg>"
    }

    /// `charge → balance=3000`, `issue → fail (sold_out)`: what a bar shows when it fits.
    static func shortLabel(_ entry: HistoryEntry) -> String {
        guard entry.outcome == .ok else { return "\(entry.operation.rawValue) → \(entry.outcome.rawValue)\(entry.reason.map { " (\($0))" } ?? "")" }
        let shown = (entry.result ?? [:]).filter { !["applied", "attempts"].contains($0.key) }.sorted { $0.key < $1.key }
        return "\(entry.operation.rawValue) → " + (shown.isEmpty ? "ok" : shown.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }

    static func describe(_ entry: HistoryEntry) -> String {
        let arguments = entry.arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let result = entry.result.map { $0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") } ?? ""
        return "\(entry.operation.rawValue) \(arguments) → \(entry.outcome.rawValue)\(entry.reason.map { " (\($0))" } ?? "") \(result)"
    }

    private static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }

    static func html(_ text: some StringProtocol) -> String { ReportWriter.escape(String(text)) }

    /// Run by the browser after layout (scripts/check-report-html.sh reads the outcome): every
    /// timeline must be an SVG of real size with operations drawn in it. A page without anomalies
    /// has no timeline to check, which is fine.
    static let pageCheckScript = """
        <script>
        window.addEventListener('load', function () {
          var figures = document.querySelectorAll('figure.plot');
          var problems = [];
          figures.forEach(function (figure, index) {
            var name = figure.getAttribute('data-title') || ('figure ' + (index + 1));
            var svg = figure.querySelector('svg');
            if (!svg) { problems.push(name + ': no SVG'); return; }
            var box = svg.getBoundingClientRect();
            if (box.width < 100 || box.height < 60) { problems.push(name + ': drawn ' + box.width + 'x' + box.height); return; }
            if (svg.querySelectorAll('g.lane rect').length === 0) problems.push(name + ': no operation drawn');
          });
          document.body.setAttribute('data-plot-check', problems.length === 0 ? 'ok ' + figures.length + ' timelines' : 'fail: ' + problems.join('; '));
        });
        </script>
        """
}
