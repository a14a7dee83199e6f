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

    /// One line chart: series name → points (x, y); `dashed` series are drawn dashed (ceilings).
    static func lines(
        title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)], dashed: Bool, color: Int)],
        logX: Bool = true, logY: Bool = false, directory: String
    ) throws -> String {
        var data: [String: String] = [:]
        var plots: [String] = []
        for (index, entry) in series.enumerated() where !entry.points.isEmpty {
            let file = "\(directory)/series-\(UUID().uuidString.prefix(8))-\(index).dat"
            data[(file as NSString).lastPathComponent] = entry.points.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n"
            let style = entry.dashed ? "dt 2 lw 1.5" : "lw 2 pt 7 ps 0.6"
            plots.append(
                "'\(file)' using 1:2 with \(entry.dashed ? "lines" : "linespoints") \(style) lc \(entry.color) title \"\(escape(entry.name))\"")
        }
        guard !plots.isEmpty else { throw BenchError("nothing to plot for \(title)") }
        let script = """
            set terminal svg size 620,380 fixed font "sans,10" background rgb "white"
            set title "\(escape(title))"
            set xlabel "\(escape(xLabel))"
            set ylabel "\(escape(yLabel))"
            set key outside right top
            set grid
            \(logX ? "set logscale x 2" : "")
            \(logY ? "set logscale y 10" : "")
            set yrange [0:*]
            plot \(plots.joined(separator: ", \\\n     "))

            """
        let withData = Dictionary(uniqueKeysWithValues: data.map { ($0.key, $0.value) })
        return try svg(script, data: withData, directory: directory)
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
                func points(_ strategy: String, _ value: (CellResult) -> Double?) -> [(Double, Double)] {
                    cells.filter { $0.key.strategy == strategy }.sorted { $0.key.clients < $1.key.clients }
                        .compactMap { cell in value(cell).map { (Double(cell.key.clients), $0) } }
                }
                var throughput: [(name: String, points: [(Double, Double)], dashed: Bool, color: Int)] = []
                var latency = throughput
                var retries = throughput
                var waits = throughput
                for (index, strategy) in strategies.enumerated() {
                    let color = index + 1
                    let label = strategy + (BenchCase.isNegativeControl(benchCase.caseName, strategy) ? " (control)" : "")
                    throughput.append((label, points(strategy) { $0.throughput?.median }, false, color))
                    throughput.append(("\(strategy) ceiling", points(strategy) { $0.ceiling?.median }, true, color))
                    latency.append(("\(strategy) p50", points(strategy) { $0.median { $0.latencyP50 }.map { $0 * 1000 } }, false, color))
                    latency.append(("\(strategy) p99", points(strategy) { $0.median { $0.latencyP99 }.map { $0 * 1000 } }, true, color))
                    retries.append((label, points(strategy) { $0.retriesPerOperation }, false, color))
                    waits.append(("\(strategy) row p99", points(strategy) { $0.lockWait("row", \.p99).map { $0 * 1000 } }, false, color))
                    waits.append(("\(strategy) redis p99", points(strategy) { $0.lockWait("redis", \.p99).map { $0 * 1000 } }, true, color))
                }
                var poolWaits: [(name: String, points: [(Double, Double)], dashed: Bool, color: Int)] = []
                if pool != nil {
                    for (index, strategy) in strategies.enumerated() {
                        poolWaits.append(("\(strategy) postgres p99", points(strategy) { $0.poolWait("postgres", \.p99).map { $0 * 1000 } }, false, index + 1))
                        poolWaits.append(("\(strategy) redis p99", points(strategy) { $0.poolWait("redis", \.p99).map { $0 * 1000 } }, true, index + 1))
                    }
                }
                let title = "\(benchCase.caseName.rawValue), \(contention.rawValue)" + (pool.map { ", pool of \($0)" } ?? "")
                var charts: [(title: String, yLabel: String, series: [(name: String, points: [(Double, Double)], dashed: Bool, color: Int)])] = [
                    ("\(title): throughput (ceiling dashed)", "operations/s", throughput),
                    ("\(title): latency p50 (solid), p99 (dashed)", "ms", latency),
                    ("\(title): retries per operation", "retries/op", retries),
                ]
                if waits.contains(where: { !$0.points.isEmpty }) {
                    charts.append(("\(title): lock wait p99 (row solid, redis dashed)", "ms", waits))
                }
                if poolWaits.contains(where: { !$0.points.isEmpty }) {
                    charts.append(("\(title): pool wait p99 (postgres solid, redis dashed)", "ms", poolWaits))
                }
                var figures: [String] = []
                for chart in charts {
                    let svg = try Gnuplot.lines(
                        title: chart.title, xLabel: "clients", yLabel: chart.yLabel, series: chart.series, directory: work)
                    figures.append("<figure class=\"plot\" data-title=\"\(html(chart.title))\">\(svg)</figure>")
                }
                sections.append(
                    "<section class=\"case\" id=\"\(benchCase.caseName.rawValue)-\(contention.rawValue)\(pool.map { "-pool\($0)" } ?? "")\"><h2>\(html(title))</h2>\n"
                        + figures.joined(separator: "\n") + "</section>")
            }
        }
        let markdownTables = BenchReport.markdown(results)
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
            pre.pgbench { background: #f4f4ff; padding: 0.6em; font-size: 11px; overflow-x: auto; }
            </style>
            \(plotCheckScript)
            </head><body>
            <h1>LockProof benchmark — \(html(results.preset)) preset</h1>
            \(results.failed ? "<p class=\"failed\">The run had errors: the numbers are incomplete (see the summary).</p>" : "")
            <p>Plots drawn by gnuplot. Each solid line is a strategy measured by LockProof (median of the repetitions); the dashed line of the same colour is pgbench running exactly that strategy's statements on the same seed with the same clients (in a pooled section: as many clients as the pool has sessions).</p>
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
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
