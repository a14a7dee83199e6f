import Foundation
import LockProofCommerce
import LockProofScenario

/// Plots drawn by gnuplot (SVG), embedded in one self-contained HTML page.
public enum Gnuplot {
    /// Runs a gnuplot script that writes SVG to standard output; fails when gnuplot is missing or
    /// draws nothing.
    public static func svg(_ script: String, data: [String: String], directory: String) throws -> String {
        guard let gnuplot = findTool("gnuplot") else {
            throw BenchError("gnuplot not found (Debian's gnuplot-nox); run scripts/install-deps.sh bench")
        }
        for (name, text) in data {
            try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        }
        let scriptPath = "\(directory)/plot-\(UUID().uuidString.prefix(8)).gp"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        let (status, output) = try runProgram(gnuplot, [scriptPath], timeoutSeconds: 60)
        guard status == 0, let start = output.range(of: "<svg") else {
            throw BenchError("gnuplot failed (status \(status)): \(output.prefix(400))")
        }
        return String(output[start.lowerBound...])
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "'").replacingOccurrences(of: "_", with: "\\\\_")
    }

    /// One series of a small-multiples panel: a value per measured client count (nil: nothing
    /// measured there), optional min–max bars, and the counts to mark ✗ (invariant broken).
    struct Series {
        let name: String
        let values: [Double?]
        var low: [Double?]? = nil
        var high: [Double?]? = nil
        var dashed = false
        var color = 1
        var broken: [Bool] = []
    }

    struct Panel {
        let title: String
        let series: [Series]
    }

    /// A grid of small plots sharing one axis layout (gnuplot's multiplot), one panel per strategy.
    /// The x axis holds only the client counts measured, evenly spaced, so that no line crosses a
    /// count nothing measured; `yFloor` keeps an axis from zooming into noise (a 0–0.001 axis
    /// makes jitter look like a climb); `logY` keeps a p50 readable next to its p99.
    static func smallMultiples(
        title: String, clients: [Int], yLabel: String, panels: [Panel], logY: Bool = false, yFloor: Double = 0,
        directory: String
    ) throws -> String {
        var data: [String: String] = [:]
        var blocks: [String] = []
        let columns = min(4, panels.count)
        let rows = (panels.count + columns - 1) / columns
        let xtics = clients.enumerated().map { "\"\($0.element)\" \($0.offset)" }.joined(separator: ", ")
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite, !logY || value > 0 else { return "NaN" }
            return String(format: "%.9g", value)
        }
        for (panelIndex, panel) in panels.enumerated() {
            var plots: [String] = []
            for (index, entry) in panel.series.enumerated() where entry.values.contains(where: { $0 != nil }) {
                let name = "panel-\(UUID().uuidString.prefix(8))-\(panelIndex)-\(index).dat"
                let file = "\(directory)/\(name)"
                data[name] = entry.values.indices.map { i in
                    let broken = i < entry.broken.count && entry.broken[i] ? 1 : 0
                    return "\(i) \(number(entry.values[i])) \(number(entry.low?[i] ?? entry.values[i])) \(number(entry.high?[i] ?? entry.values[i])) \(broken)"
                }.joined(separator: "\n") + "\n"
                let style = entry.dashed ? "dt 2 lw 1.2 pt 6 ps 0.5" : "lw 1.8 pt 7 ps 0.5"
                let how = entry.low != nil ? "using 1:2:3:4 with yerrorlines" : "using 1:2 with linespoints"
                plots.append("'\(file)' \(how) \(style) lc \(entry.color) title \"\(escape(entry.name))\"")
                if entry.broken.contains(true) {
                    plots.append(
                        "'\(file)' using 1:($5 > 0 ? $2 : NaN):(\"✗\") with labels offset 0,0.9 font \",16\" tc rgb \"#c00000\" notitle")
                }
            }
            if plots.isEmpty { plots.append("NaN notitle") }
            blocks.append(
                """
                set title "\(escape(panel.title))"
                plot \(plots.joined(separator: ", \\\n     "))
                """)
        }
        // One y scale for every panel, so that panels compare at a glance, with headroom above
        // the highest point for the legend and the ✗ marks.
        let drawn = panels.flatMap(\.series).flatMap { $0.values + ($0.high ?? []) }.compactMap { $0 }
            .filter { $0.isFinite && (!logY || $0 > 0) }
        let yRange: String
        if logY {
            let low = drawn.min().map { pow(10, (log10($0)).rounded(.down)) } ?? 0.1
            let high = drawn.max().map { pow(10, (log10($0)).rounded(.up) + 1) } ?? 10
            yRange = "set logscale y 10\nset yrange [\(String(format: "%g", low)):\(String(format: "%g", high))]"
        } else {
            yRange = "set yrange [0:\(String(format: "%g", max(yFloor, (drawn.max() ?? 0) * 1.4)))]"
        }
        let script = """
            set encoding utf8
            set terminal svg size \(columns * 300),\(rows * 230 + 30) fixed font "sans,9" background rgb "white"
            set multiplot layout \(rows),\(columns) title "\(escape(title))" font ",11"
            set xlabel "clients"
            set ylabel "\(escape(yLabel))"
            set key top left font ",8" samplen 2 opaque
            set grid
            set xrange [-0.4:\(Double(clients.count) - 0.6)]
            set xtics (\(xtics))
            \(yRange)
            \(blocks.joined(separator: "\n"))
            unset multiplot

            """
        return try svg(script, data: data, directory: directory)
    }
}

/// bench.html: per case and contention, throughput against clients per strategy with its pgbench
/// ceiling as a dashed line; latency percentiles; retries per operation; lock waits.
public enum BenchHTML {
    public static func write(_ results: BenchResults, to directory: String) throws {
        // gnuplot's data and scripts in a new private folder, not in the report folder, where a
        // name could already be a link.
        let work = try temporaryHistoryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: work) }
        var sections: [String] = []
        for benchCase in BenchCase.all {
            // The matrix per contention, then the cells whose clients share a pool.
            let pools = Set(results.cells.filter { $0.key.caseName == benchCase.caseName }.compactMap(\.key.pool)).sorted()
            let groups: [(Contention, Int?)] = benchCase.contentions.map { ($0, nil) } + pools.map { (.spread, $0) }
            for (contention, pool) in groups {
                let cells = results.cells.filter {
                    $0.key.caseName == benchCase.caseName && $0.key.contention == contention && $0.key.pool == pool
                        && !$0.runs.isEmpty
                }
                guard !cells.isEmpty else { continue }
                let strategies = benchCase.strategies.filter { strategy in cells.contains { $0.key.strategy == strategy } }
                let clients = Array(Set(cells.map(\.key.clients))).sorted()
                let title = "\(benchCase.caseName.rawValue), \(contention.rawValue)" + (pool.map { ", pool of \($0)" } ?? "")
                let figures = try sectionFigures(
                    title: title, caseName: benchCase.caseName, strategies: strategies, clients: clients, cells: cells,
                    pooled: pool != nil, directory: work)
                sections.append(
                    "<section class=\"case\" id=\"\(benchCase.caseName.rawValue)-\(contention.rawValue)\(pool.map { "-pool\($0)" } ?? "")\"><h2>\(html(title))</h2>\n"
                        + figures.joined(separator: "\n") + "</section>")
            }
        }
        let markdownTables = BenchReport.details(results)
        let page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>LockProof benchmark (\(html(results.preset)))</title>
            <style>
            body { font-family: sans-serif; margin: 1.5em; color: #222; }
            figure.plot { display: inline-block; margin: 0.4em; border: 1px solid #ddd; }
            figure.plot svg { display: block; }
            div.summary table { border-collapse: collapse; margin: 0.5em 0; }
            div.summary td, div.summary th { border: 1px solid #ccc; padding: 2px 6px; font-size: 12px; vertical-align: top; }
            .failed { color: #b00; font-weight: bold; }
            table.decision { border-collapse: collapse; margin: 0.4em 0 0.6em; font-size: 13px; }
            table.decision td, table.decision th { border: 1px solid #ccc; padding: 3px 8px; }
            table.decision td.num { text-align: right; font-variant-numeric: tabular-nums; }
            table.decision tr.unranked td { background: #fff4e5; }
            table.decision tr.broken td { background: #fde8e8; }
            table.decision tr.first td { background: #e8f6e8; font-weight: bold; }
            table.decision tr.group td { border-top: 2px solid #888; }
            .bad { color: #b00; font-weight: bold; }
            .warn { color: #a85d00; }
            p.pick { max-width: 75em; background: #f4f8ff; border-left: 4px solid #4a7bd0; padding: 0.5em 0.8em; }
            p.note { color: #555; font-style: italic; }
            p.run { color: #444; margin-top: -0.6em; }
            pre.pgbench { background: #f4f4ff; padding: 0.6em; font-size: 11px; overflow-x: auto; }
            </style>
            \(plotCheckScript)
            </head><body>
            <h1>LockProof benchmark</h1>
            <p class="run">\(html(results.preset)); started \(html(results.startedAt))\(results.machine.map { html(", \($0.cores) cores, PostgreSQL \($0.postgresqlVersion ?? "?"), Redis \($0.redisVersion ?? "?")") } ?? "")</p>
            \(results.hadErrors ? "<p class=\"failed\">The run had errors: the numbers are incomplete (see the summary).</p>" : "")
            \(results.unmeasuredClaims.isEmpty ? "" : "<p class=\"failed\">Claims not measured (exit 1): \(html(results.unmeasuredClaims.map { "\($0.number)" }.joined(separator: ", "))) — see the verdicts.</p>")
            \(decisionHTML(results))
            <h2>Plots</h2>
            <p>Plots drawn by gnuplot, one small panel per strategy. The x axis holds only the client counts measured. Solid: LockProof's median over the repetitions, with bars from the slowest to the fastest repetition; dashed: pgbench running exactly that strategy's statements on the same seed with the same clients (in a pooled section: as many clients as the pool has sessions); a red ✗ marks a point where a checker found the invariant broken. Latency is on a log scale so that p50 stays readable under p99.</p>
            \(sections.joined(separator: "\n"))
            <h2>Summary, verdicts and ratios</h2>
            <div class="summary">\(markdownToHTML(markdownTables))</div>
            <h2>pgbench scripts (derived from traced statements)</h2>
            \(results.scripts.sorted { $0.key < $1.key }.map { "<h3>\(html($0.key))</h3><pre class=\"pgbench\">\(html($0.value))</pre>" }.joined(separator: "\n"))
            </body></html>

            """
        try ReportFile.write(page, named: "bench.html", in: URL(fileURLWithPath: directory, isDirectory: true))
    }
}

/// The decision tables at the top of bench.html: per case, the figures a reader picks from, the
/// first usable strategy of each point green, the unranked ones shaded with their reason, and the
/// "pick X when …" paragraph.
func decisionHTML(_ results: BenchResults) -> String {
    var parts = ["<h2 id=\"decision\">What to pick</h2>",
        "<p>Per case: each strategy's operations/s (median of the repetitions, [min–max]), p99, failed operations (retry exhaustion, timeouts, conflicts left to the user; a business refusal is not a failure) and the checkers' verdict. Only a strategy that kept its invariant without failing an operation is ranked; the others are marked with the reason.</p>"]
    for table in DecisionTable.all(results) {
        var rows = ["<tr><th>contention</th><th>clients</th><th>rank</th><th>strategy</th><th>ops/s median [min–max]</th><th>p99</th><th>failed operations</th><th>invariant</th></tr>"]
        var previous: (Contention, Int)?
        for row in table.rows {
            let cell = row.cell
            var classes: [String] = []
            if let previous, previous != (cell.key.contention, cell.key.clients) { classes.append("group") }
            previous = (cell.key.contention, cell.key.clients)
            if row.rank == 1 { classes.append("first") }
            if row.rank == nil { classes.append(cell.invariantHeld && cell.errors.isEmpty ? "unranked" : "broken") }
            let spread = cell.throughput.map {
                "\(opsPerSecond($0.median)) [\(opsPerSecond($0.min))–\(opsPerSecond($0.max))]"
                    + (cell.spreadTooWideToRank ? " <span class=\"warn\" title=\"repetitions disagree by more than \(Int(BenchWarnings.widestRankableSpreadPercent))%\">⚠ spread</span>" : "")
            } ?? "n/a"
            let failed = cell.failedOperations == 0
                ? "0" : "<span class=\"bad\">⚠ \(cell.failedOperations)</span> of \(cell.operations) (\(html(reasonList(cell.failedOperationsByReason))))"
            let invariant = !cell.errors.isEmpty
                ? "<span class=\"bad\">ERROR</span>" : cell.invariantHeld ? "✓ held" : "<span class=\"bad\">✗ broken</span> \(html(cell.violations.joined(separator: ", ")))"
            let rank = row.rank.map(String.init) ?? "<span class=\"warn\" title=\"\(html(cell.notRankedBecause ?? ""))\">not ranked</span>"
            let name = html(cell.key.strategy) + (cell.negativeControl ? " <i>(control)</i>" : "")
            rows.append(
                "<tr class=\"\(classes.joined(separator: " "))\"><td>\(cell.key.contention.rawValue)</td><td class=\"num\">\(cell.key.clients)</td><td class=\"num\">\(rank)</td><td>\(name)</td><td class=\"num\">\(spread)</td><td class=\"num\">\(milliseconds(cell.latencyP99))</td><td>\(failed)</td><td>\(invariant)</td></tr>")
        }
        let pick = html(table.pick).replacingOccurrences(of: "\\*\\*([^*]+)\\*\\*", with: "<b>$1</b>", options: .regularExpression)
        parts.append("<h3>\(table.caseName.rawValue)</h3><table class=\"decision\">\(rows.joined(separator: "\n"))</table><p class=\"pick\">\(pick)</p>")
    }
    let wide = BenchWarnings.wideSpreads(results)
    if !wide.isEmpty {
        parts.append("<p class=\"warn\"><b>Spread too wide to rank:</b></p><ul>" + wide.map { "<li>\(html($0))</li>" }.joined() + "</ul>")
    }
    return "<div class=\"decisions\">" + parts.joined(separator: "\n") + "</div>"
}

/// The figures of one section (a case at one contention, or its pooled cells): throughput and
/// latency as small multiples per strategy, then retries, lock waits and pool waits for the
/// strategies that have any; a figure with nothing but zeros becomes a sentence.
func sectionFigures(
    title: String, caseName: CaseName, strategies: [String], clients: [Int], cells: [CellResult], pooled: Bool,
    directory: String
) throws -> [String] {
    func cell(_ strategy: String, _ count: Int) -> CellResult? {
        cells.first { $0.key.strategy == strategy && $0.key.clients == count }
    }
    func values(_ strategy: String, _ value: (CellResult) -> Double?) -> [Double?] {
        clients.map { count in cell(strategy, count).flatMap(value) }
    }
    func label(_ strategy: String) -> String {
        var text = strategy + (BenchCase.isNegativeControl(caseName, strategy) ? " (control)" : "")
        let failed = clients.compactMap { cell(strategy, $0)?.failedOperations }.reduce(0, +)
        if failed > 0 { text += " — \(failed) failed ops" }
        return text
    }
    var figures: [String] = []
    var notes: [String] = []
    func figure(_ name: String, _ svg: String) {
        figures.append("<figure class=\"plot\" data-title=\"\(html(name))\">\(svg)</figure>")
    }
    let throughputPanels = strategies.map { strategy in
        Gnuplot.Panel(title: label(strategy), series: [
            Gnuplot.Series(
                name: "LockProof", values: values(strategy) { $0.throughput?.median }, low: values(strategy) { $0.throughput?.min },
                high: values(strategy) { $0.throughput?.max }, color: 1,
                broken: clients.map { count in cell(strategy, count).map { !$0.runs.isEmpty && !$0.invariantHeld } ?? false }),
            Gnuplot.Series(name: "pgbench ceiling", values: values(strategy) { $0.ceiling?.median }, dashed: true, color: 8),
        ])
    }
    let throughputTitle = "\(title): operations/s per strategy (bars: min–max of the repetitions; dashed: pgbench ceiling)"
    figure(throughputTitle, try Gnuplot.smallMultiples(
        title: throughputTitle, clients: clients, yLabel: "operations/s", panels: throughputPanels, yFloor: 1, directory: directory))
    let latencyPanels = strategies.map { strategy in
        Gnuplot.Panel(title: label(strategy), series: [
            Gnuplot.Series(name: "p50", values: values(strategy) { $0.median { $0.latencyP50 }.map { $0 * 1000 } }, color: 3),
            Gnuplot.Series(name: "p99", values: values(strategy) { $0.latencyP99.map { $0 * 1000 } }, dashed: true, color: 7),
        ])
    }
    let latencyTitle = "\(title): latency per strategy, ms (log scale)"
    figure(latencyTitle, try Gnuplot.smallMultiples(
        title: latencyTitle, clients: clients, yLabel: "ms", panels: latencyPanels, logY: true, directory: directory))

    /// Panels for the strategies with a value above zero somewhere; the others named in a sentence.
    func optional(
        _ what: String, yLabel: String, floor: Double,
        _ series: (String) -> [Gnuplot.Series]
    ) throws {
        let active = strategies.filter { strategy in
            series(strategy).contains { $0.values.contains { ($0 ?? 0) > 0 } }
        }
        let idle = strategies.filter { !active.contains($0) }
        if active.isEmpty {
            notes.append("\(what): zero for every strategy at every client count measured (no plot).")
            return
        }
        let name = "\(title): \(what)"
        figure(name, try Gnuplot.smallMultiples(
            title: name, clients: clients, yLabel: yLabel,
            panels: active.map { Gnuplot.Panel(title: label($0), series: series($0)) }, yFloor: floor, directory: directory))
        if !idle.isEmpty { notes.append("\(what): zero throughout for \(idle.joined(separator: ", ")) (not plotted).") }
    }
    try optional("retries per operation", yLabel: "retries/op", floor: 0.1) { strategy in
        [Gnuplot.Series(name: "retries/op", values: values(strategy) { $0.retriesPerOperation }, color: 4)]
    }
    try optional("lock wait p99, ms", yLabel: "ms", floor: 1) { strategy in
        [
            Gnuplot.Series(name: "row", values: values(strategy) { $0.lockWait("row", \.p99).map { $0 * 1000 } }, color: 2),
            Gnuplot.Series(name: "redis", values: values(strategy) { $0.lockWait("redis", \.p99).map { $0 * 1000 } }, dashed: true, color: 6),
        ]
    }
    if pooled {
        try optional("pool wait p99, ms", yLabel: "ms", floor: 1) { strategy in
            [
                Gnuplot.Series(name: "postgres", values: values(strategy) { $0.poolWait("postgres", \.p99).map { $0 * 1000 } }, color: 2),
                Gnuplot.Series(name: "redis", values: values(strategy) { $0.poolWait("redis", \.p99).map { $0 * 1000 } }, dashed: true, color: 6),
            ]
        }
    }
    return figures + notes.map { "<p class=\"note\">\(html($0))</p>" }
}

/// Run by the browser after layout (scripts/check-report-html.sh reads the outcome): every figure
/// must hold an SVG of real size with data drawn in it. In gnuplot's SVG a series' group holds
/// its legend sample (a 2-vertex path, one marker) plus the data, so anything beyond that is data.
let plotCheckScript = """
    <script>
    window.addEventListener('load', function () {
      var figures = document.querySelectorAll('figure.plot');
      var problems = [];
      figures.forEach(function (figure, index) {
        var name = figure.getAttribute('data-title') || ('figure ' + (index + 1));
        var svg = figure.querySelector('svg');
        if (!svg) { problems.push(name + ': no SVG'); return; }
        var box = svg.getBoundingClientRect();
        if (box.width < 100 || box.height < 80) { problems.push(name + ': drawn ' + box.width + 'x' + box.height); return; }
        var groups = svg.querySelectorAll('g[id^="gnuplot_plot_"], g.lane');
        var drawn = 0;
        groups.forEach(function (group) {
          if (group.classList.contains('lane')) { drawn += group.querySelectorAll('rect').length; return; }
          var vertices = 0;
          group.querySelectorAll('path').forEach(function (path) {
            vertices += ((path.getAttribute('d') || '').match(/[ML]/g) || []).length;
          });
          drawn += Math.max(0, vertices - 2) + Math.max(0, group.querySelectorAll('use').length - 1);
        });
        if (drawn === 0) problems.push(name + ': empty (nothing drawn beyond the axes and legend)');
      });
      if (figures.length === 0) problems.push('no plots on the page');
      document.body.setAttribute('data-plot-check', problems.length === 0 ? 'ok ' + figures.length + ' plots' : 'fail: ' + problems.join('; '));
    });
    </script>
    """

/// The summary's Markdown as HTML: headings, tables, list items, paragraphs, **bold**, `code`.
func markdownToHTML(_ markdown: String) -> String {
    func inline(_ text: String) -> String {
        var escaped = html(text)
        escaped = escaped.replacingOccurrences(of: "\\*\\*([^*]+)\\*\\*", with: "<b>$1</b>", options: .regularExpression)
        return escaped.replacingOccurrences(of: "`([^`]+)`", with: "<code>$1</code>", options: .regularExpression)
    }
    var output: [String] = []
    var table: [[String]] = []
    func flushTable() {
        guard !table.isEmpty else { return }
        var rows = ["<table>"]
        for (index, cells) in table.enumerated() where index != 1 {
            let tag = index == 0 ? "th" : "td"
            rows.append("<tr>" + cells.map { "<\(tag)>\(inline($0))</\(tag)>" }.joined() + "</tr>")
        }
        output.append((rows + ["</table>"]).joined(separator: "\n"))
        table = []
    }
    for line in markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if line.hasPrefix("|") {
            table.append(line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) })
            continue
        }
        flushTable()
        if line.hasPrefix("### ") {
            output.append("<h3>\(inline(String(line.dropFirst(4))))</h3>")
        } else if line.hasPrefix("## ") {
            output.append("<h3>\(inline(String(line.dropFirst(3))))</h3>")
        } else if line.hasPrefix("- ") {
            output.append("<li>\(inline(String(line.dropFirst(2))))</li>")
        } else if !line.trimmingCharacters(in: .whitespaces).isEmpty {
            output.append("<p>\(inline(line))</p>")
        }
    }
    flushTable()
    return output.joined(separator: "\n")
}

func html(_ text: String) -> String {
    ReportWriter.escape(text)
}
