import Foundation
import LockProofCommerce

/// Outcomes a strategy is right to return (the business said no): not failures of the strategy.
/// Everything else a cell's operations ended with (retry exhaustion, timeouts, conflicts left to
/// the user, database errors) is a failed operation.
let businessRefusals: Set<String> = [
    "insufficient_balance", "insufficient_stock", "sold_out", "invalid_transition", "order_not_payable",
    "payment_declined", "already_issued_by_application_check", "already_issued_by_unique_constraint",
]

extension CellResult {
    /// Operations that failed for the strategy's own reasons, by reason.
    public var failedOperationsByReason: [String: Int] { failures.filter { !businessRefusals.contains($0.key) } }
    public var failedOperations: Int { failedOperationsByReason.values.reduce(0, +) }
    /// Median p99 latency over the repetitions, in seconds.
    public var latencyP99: Double? { median { $0.latencyP99 } }

    /// Why the cell cannot be ranked among the strategies to pick, or nil when it can.
    public var notRankedBecause: String? {
        if !errors.isEmpty { return "error" }
        if runs.isEmpty { return "not measured" }
        if !invariantHeld {
            let what = violations.isEmpty ? "" : " (\(violations.joined(separator: ", ")))"
            return (negativeControl ? "deliberately broken control: " : "") + "invariant broken\(what)"
        }
        if negativeControl { return "deliberately broken control" }
        if failedOperations > 0 { return "\(failedOperations) failed operations (\(reasonList(failedOperationsByReason)))" }
        if spreadTooWideToRank, let throughput {
            return String(
                format: "spread too wide to rank: its repetitions disagree by %.0f%% (more than %.0f%%)",
                throughput.spreadPercent, BenchWarnings.widestRankableSpreadPercent)
        }
        return nil
    }

    /// The repetitions disagree by more than `BenchWarnings.widestRankableSpreadPercent`.
    public var spreadTooWideToRank: Bool {
        guard let throughput, throughput.samples > 1 else { return false }
        return throughput.spreadPercent > BenchWarnings.widestRankableSpreadPercent
    }
}

public enum BenchWarnings {
    /// Wider than this ((max − min) / median of the repetitions), a cell's throughput cannot be
    /// ranked against its neighbours: the machine's noise is larger than the differences.
    public static let widestRankableSpreadPercent = 30.0

    /// One line per cell whose spread is too wide to rank.
    public static func wideSpreads(_ results: BenchResults) -> [String] {
        results.cells.filter(\.spreadTooWideToRank).sorted { $0.key < $1.key }.map { cell in
            let spread = cell.throughput!
            return String(
                format: "%@: %.0f ops/s median, %.0f–%.0f over %d repetitions (spread %.0f%% > %.0f%%): too wide to rank; run more repetitions or on a quieter machine",
                cell.key.id, spread.median, spread.min, spread.max, spread.samples, spread.spreadPercent, widestRankableSpreadPercent)
        }
    }
}

func reasonList(_ reasons: [String: Int]) -> String {
    reasons.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
}

/// The table a reader decides from: per case, each strategy's absolute figures at each contention
/// and client count, ranked only where the strategy kept its invariant without failing
/// operations and its repetitions agree (a spread too wide to rank leaves it unranked), then a
/// "pick X when …" paragraph generated from those figures.
public struct DecisionTable: Sendable {
    public struct Row: Sendable {
        public let cell: CellResult
        /// 1 = fastest usable strategy at this contention and client count; nil: not ranked.
        public let rank: Int?
        public var key: BenchCellKey { cell.key }
    }
    public let caseName: CaseName
    /// By contention, clients, then rank (unranked last).
    public let rows: [Row]
    public let pick: String

    public static func all(_ results: BenchResults) -> [DecisionTable] {
        BenchCase.all.compactMap { DecisionTable(results, $0.caseName) }
    }

    public init?(_ results: BenchResults, _ caseName: CaseName) {
        let cells = results.cells(caseName).filter { !$0.runs.isEmpty || !$0.errors.isEmpty }
        guard !cells.isEmpty else { return nil }
        self.caseName = caseName
        var rows: [Row] = []
        let points = Set(cells.map { PointKey(contention: $0.key.contention, clients: $0.key.clients) }).sorted()
        for point in points {
            let ranked = results.ranking(caseName, point.contention, point.clients)
            var rank = 0
            for cell in ranked {
                if cell.notRankedBecause == nil { rank += 1 }
                rows.append(Row(cell: cell, rank: cell.notRankedBecause == nil ? rank : nil))
            }
        }
        self.rows = rows
        pick = DecisionTable.pickParagraph(caseName, rows: rows, points: points)
    }

    struct PointKey: Hashable, Comparable {
        let contention: Contention
        let clients: Int
        static func < (lhs: PointKey, rhs: PointKey) -> Bool {
            (lhs.contention.rawValue, lhs.clients) < (rhs.contention.rawValue, rhs.clients)
        }
    }

    static func describe(_ contention: Contention, _ clients: Int) -> String {
        let who = clients == 1 ? "1 client" : "\(clients) clients"
        return contention == .hot ? "\(who) on one hot row" : "\(who) spread over many rows"
    }

    /// "Pick X when …", from the figures: per contention, the fastest usable strategy at the most
    /// clients, the one at the fewest when it differs, ties inside the repetitions' spread, and
    /// every faster strategy that was left out and why.
    static func pickParagraph(_ caseName: CaseName, rows: [Row], points: [PointKey]) -> String {
        var sentences: [String] = []
        // Per contention: the pick, and whether this run settles it (no tie, a narrow spread).
        var picks: [Contention: (strategy: String, settled: Bool)] = [:]
        for contention in Contention.allCases {
            let counts = points.filter { $0.contention == contention }.map(\.clients)
            guard let most = counts.max(), let fewest = counts.min() else { continue }
            let atMost = rows.filter { $0.key.contention == contention && $0.key.clients == most }
            guard let best = atMost.first(where: { $0.rank == 1 }) else {
                let why = atMost.contains { $0.cell.spreadTooWideToRank }
                    ? "no strategy kept its invariant without failing operations with repetitions that agree closely enough to rank"
                    : "no strategy kept its invariant without failing operations"
                sentences.append("With \(describe(contention, most)), \(why): none to pick.")
                continue
            }
            var settled = true
            var sentence = "With \(describe(contention, most)), pick **\(best.key.strategy)**: \(figures(best.cell))"
            if let second = atMost.first(where: { $0.rank == 2 }), let a = best.cell.throughput, let b = second.cell.throughput,
                b.max >= a.min
            {
                sentence += "; \(second.key.strategy) (\(opsPerSecond(b.median)) ops/s) is within the repetitions' spread of it, so the two are tied here"
                settled = false
            }
            let fasterLeftOut = atMost.filter {
                $0.rank == nil && ($0.cell.throughput?.median ?? 0) > (best.cell.throughput?.median ?? 0)
            }
            for row in fasterLeftOut {
                sentence += "; \(row.key.strategy) was faster (\(opsPerSecond(row.cell.throughput?.median ?? 0)) ops/s) but is not a pick: \(row.cell.notRankedBecause ?? "")"
            }
            // A usable strategy left unranked only for its noise may be the faster one: the pick is open.
            let noisy = atMost.filter {
                $0.cell.spreadTooWideToRank && $0.cell.notRankedBecause?.hasPrefix("spread") == true
                    && ($0.cell.throughput?.max ?? 0) >= (best.cell.throughput?.min ?? 0)
            }
            for row in noisy where !fasterLeftOut.contains(where: { $0.key == row.key }) {
                sentence += "; \(row.key.strategy) (\(opsPerSecond(row.cell.throughput?.median ?? 0)) ops/s) may be as fast but is not ranked: \(row.cell.notRankedBecause ?? "")"
            }
            if !noisy.isEmpty { settled = false }
            picks[contention] = (best.key.strategy, settled)
            sentences.append(sentence + ".")
            if fewest != most,
                let low = rows.first(where: { $0.key.contention == contention && $0.key.clients == fewest && $0.rank == 1 }),
                low.key.strategy != best.key.strategy
            {
                sentences.append("With \(describe(contention, fewest)), \(low.key.strategy) leads instead: \(figures(low.cell)).")
            }
        }
        if picks.count == 2, let hot = picks[.hot], let spread = picks[.spread] {
            func named(_ pick: (strategy: String, settled: Bool)) -> String {
                pick.strategy + (pick.settled ? "" : " (not settled by this run: a tie or too wide a spread)")
            }
            sentences.insert(
                hot.strategy == spread.strategy && hot.settled && spread.settled
                    ? "Pick \(hot.strategy) whether writes meet on one row or spread over many."
                    : "Pick \(named(hot)) when writes meet on one hot row, \(named(spread)) when they spread over many rows.",
                at: 0)
        }
        return sentences.joined(separator: " ")
    }

    static func figures(_ cell: CellResult) -> String {
        "\(opsPerSecond(cell.throughput?.median ?? 0)) ops/s, p99 \(milliseconds(cell.latencyP99)), no failed operation, invariant held"
    }

    public var markdown: String {
        var text = "#### \(caseName.rawValue)\n\n"
        text += "| contention | clients | rank | strategy | ops/s median [min–max] | p99 | failed operations | invariant |\n"
        text += "|---|---:|---:|---|---:|---:|---|---|\n"
        for row in rows {
            let cell = row.cell
            let spread = cell.throughput.map {
                "\(opsPerSecond($0.median)) [\(opsPerSecond($0.min))–\(opsPerSecond($0.max))]" + (cell.spreadTooWideToRank ? " ⚠ spread" : "")
            } ?? "n/a"
            let failed = cell.failedOperations == 0
                ? "0" : "⚠ \(cell.failedOperations) of \(cell.operations) (\(reasonList(cell.failedOperationsByReason)))"
            let invariant = !cell.errors.isEmpty ? "ERROR" : cell.invariantHeld ? "✓ held" : "✗ broken"
            let rank = row.rank.map(String.init) ?? "not ranked"
            let name = cell.key.strategy + (cell.negativeControl ? " (control)" : "")
            text += "| \(cell.key.contention.rawValue) | \(cell.key.clients) | \(rank) | \(name) | \(spread) | \(milliseconds(cell.latencyP99)) | \(failed) | \(invariant) |\n"
        }
        return text + "\n" + pick + "\n"
    }
}

func opsPerSecond(_ value: Double) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    formatter.locale = Locale(identifier: "en_US")
    return formatter.string(from: NSNumber(value: value.rounded())) ?? String(format: "%.0f", value)
}

func milliseconds(_ seconds: Double?) -> String {
    guard let seconds else { return "n/a" }
    let ms = seconds * 1000
    return ms < 10 ? String(format: "%.2f ms", ms) : String(format: "%.0f ms", ms)
}
