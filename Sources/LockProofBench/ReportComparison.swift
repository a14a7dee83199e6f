import Foundation
import LockProofScenario

/// How one figure moved between two reports, judged against the noise.
public struct FigureChange: Sendable {
    public enum Judgement: String, Sendable { case slower, faster, unchanged = "no change", notJudged = "not judged" }
    public let baseline: [Double]
    public let new: [Double]
    public let judgement: Judgement
    /// Why it was not judged (too few samples, nothing measured).
    public let reason: String?

    /// Relative change of the medians, new over baseline.
    public var change: Double? {
        guard let from = ReportComparison.median(baseline), let to = ReportComparison.median(new), from > 0 else { return nil }
        return (to - from) / from
    }
}

/// One row of the comparison.
public struct EntryComparison: Sendable {
    public enum Outcome: Int, Sendable, Comparable {
        case verdictWorse, slower, verdictBetter, faster, unchanged, notJudged, onlyInBaseline, onlyInNew
        public static func < (lhs: Outcome, rhs: Outcome) -> Bool { lhs.rawValue < rhs.rawValue }
        var label: String {
            switch self {
            case .verdictWorse: return "verdict worse"
            case .slower: return "slower"
            case .verdictBetter: return "verdict better"
            case .faster: return "faster"
            case .unchanged: return "no change"
            case .notJudged: return "not judged"
            case .onlyInBaseline: return "only in baseline"
            case .onlyInNew: return "only in new"
            }
        }
    }
    public let name: String
    public let baseline: ComparedEntry?
    public let new: ComparedEntry?
    public let throughput: FigureChange?
    public let latencyP99: FigureChange?
    public let outcome: Outcome
}

/// `lockproof compare BASELINE NEW`: the differences per scenario or bench cell, with the noise of
/// the repetitions taken into account.
public struct ReportComparison: Sendable {
    /// With 2 or more repetitions on both sides, a change counts when the ranges do not overlap
    /// and the medians differ by more than this (so that a steady machine's 1 % is no regression).
    public static let minimumChangeWithRepetitions = 0.10
    /// Throughput is judged on runs of at least this many operations.
    public static let minimumOperations = 20
    /// p99 is judged on at least this many samples (Threshold's rule: 2 above the percentile).
    public static let minimumLatencySamples = Threshold.minimumSamples(forPercentile: 99)

    public let baseline: ReportSet
    public let new: ReportSet
    /// Relative change that counts when either side has a single repetition (0.5 = 50 %).
    public let tolerance: Double
    public let rows: [EntryComparison]

    public init(baseline: ReportSet, new: ReportSet, tolerance: Double) throws {
        guard baseline.kind == new.kind else {
            throw ComparisonInputError(
                "\(baseline.folder) holds \(baseline.kind.rawValue) and \(new.folder) \(new.kind.rawValue): compare like with like")
        }
        self.baseline = baseline
        self.new = new
        self.tolerance = tolerance
        let names = Set(baseline.entries.keys).union(new.entries.keys)
        rows = names.map { name in
            Self.compare(name, baseline.entries[name], new.entries[name], tolerance: tolerance)
        }.sorted { ($0.outcome, $0.name) < ($1.outcome, $1.name) }
    }

    public var regressions: [EntryComparison] { rows.filter { $0.outcome == .verdictWorse || $0.outcome == .slower } }

    static func compare(_ name: String, _ from: ComparedEntry?, _ to: ComparedEntry?, tolerance: Double) -> EntryComparison {
        guard let from, let to else {
            return EntryComparison(
                name: name, baseline: from, new: to, throughput: nil, latencyP99: nil, outcome: from == nil ? .onlyInNew : .onlyInBaseline)
        }
        let samples = min(from.operations, to.operations)
        let throughput = judge(
            from.throughput, to.throughput, higherIsBetter: true, tolerance: tolerance,
            tooFew: samples < minimumOperations ? "fewer than \(minimumOperations) operations" : nil)
        let p99 = judge(
            from.latencyP99, to.latencyP99, higherIsBetter: false, tolerance: tolerance,
            tooFew: samples < minimumLatencySamples ? "fewer than \(minimumLatencySamples) samples for a p99" : nil)
        let figures = [throughput.judgement, p99.judgement]
        let outcome: EntryComparison.Outcome
        if from.verdictGood && !to.verdictGood {
            outcome = .verdictWorse
        } else if figures.contains(.slower) {
            outcome = .slower
        } else if !from.verdictGood && to.verdictGood {
            outcome = .verdictBetter
        } else if figures.contains(.faster) {
            outcome = .faster
        } else if figures.contains(.unchanged) || from.verdict != to.verdict {
            outcome = .unchanged
        } else {
            outcome = .notJudged
        }
        return EntryComparison(name: name, baseline: from, new: to, throughput: throughput, latencyP99: p99, outcome: outcome)
    }

    /// The rule, stated in the output: see `ruleText`.
    static func judge(_ from: [Double], _ to: [Double], higherIsBetter: Bool, tolerance: Double, tooFew: String?) -> FigureChange {
        func result(_ judgement: FigureChange.Judgement, _ reason: String? = nil) -> FigureChange {
            FigureChange(baseline: from, new: to, judgement: judgement, reason: reason)
        }
        guard let fromMedian = median(from), let toMedian = median(to) else { return result(.notJudged, "not measured") }
        if let tooFew { return result(.notJudged, tooFew) }
        guard fromMedian > 0 else { return result(.notJudged, "baseline is 0") }
        let change = (toMedian - fromMedian) / fromMedian
        let beyondNoise: Bool
        if from.count >= 2 && to.count >= 2 {
            let overlap = from.max()! >= to.min()! && to.max()! >= from.min()!
            beyondNoise = !overlap && abs(change) > minimumChangeWithRepetitions
        } else {
            beyondNoise = abs(change) > tolerance
        }
        guard beyondNoise else { return result(.unchanged) }
        return result((change > 0) == higherIsBetter ? .faster : .slower)
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    public var ruleText: String {
        "rule: a change counts only beyond the noise: with 2 or more repetitions on both sides, when the ranges "
            + "(min–max) of the repetitions do not overlap and the medians differ by more than "
            + "\(percent(Self.minimumChangeWithRepetitions)); with a single repetition, when the values differ by more than "
            + "\(percent(tolerance)) (--tolerance). Throughput is judged on runs of at least \(Self.minimumOperations) "
            + "operations, p99 on at least \(Self.minimumLatencySamples) samples. A regression: a verdict got worse "
            + "(PASS → FAIL or ERROR; an invariant that held broke), or throughput fell or p99 rose beyond the noise."
    }

    /// The report: verdict changes first, then slowdowns, improvements, and a table of every row.
    public func text(style: TerminalStyle = .plain) -> String {
        var lines = [
            "lockproof compare: \(baseline.folder) (\(baseline.entries.count) \(baseline.kind.rawValue)) → \(new.folder) (\(new.entries.count) \(new.kind.rawValue))",
            ruleText, "",
        ]
        let sections: [(String, [EntryComparison.Outcome])] = [
            ("verdict changes", []), ("slower, beyond the noise", [.slower]),
            ("faster, beyond the noise", [.faster]), ("only in one of the two", [.onlyInBaseline, .onlyInNew]),
        ]
        for (title, outcomes) in sections {
            let selected = rows.filter { row in
                title == "verdict changes" ? verdictChanged(row) : outcomes.contains(row.outcome)
            }
            guard !selected.isEmpty else { continue }
            lines.append("\(title):")
            for row in selected { lines.append("  " + describe(row, section: title, style: style)) }
            lines.append("")
        }
        lines.append(contentsOf: table())
        lines.append("")
        let counts = Dictionary(grouping: rows, by: \.outcome).mapValues(\.count)
        let tally = EntryComparison.Outcome.allCases.compactMap { outcome in counts[outcome].map { "\($0) \(outcome.label)" } }
            .joined(separator: ", ")
        lines.append(
            regressions.isEmpty
                ? "result: " + style.good("no regression") + " (\(tally))"
                : "result: " + style.bad("REGRESSION") + " (\(tally))")
        return lines.joined(separator: "\n")
    }

    private func verdictChanged(_ row: EntryComparison) -> Bool {
        guard let from = row.baseline, let to = row.new else { return false }
        return from.verdict != to.verdict
    }

    private func describe(_ row: EntryComparison, section: String, style: TerminalStyle) -> String {
        guard let from = row.baseline, let to = row.new else {
            return "\(row.name): only in \(row.baseline == nil ? new.folder : baseline.folder)"
        }
        if section == "verdict changes" {
            let text = "\(row.name): \(from.verdict) → \(to.verdict)"
            if from.verdictGood == to.verdictGood { return "· " + text }
            return to.verdictGood ? style.good("✓ " + text) : style.bad("✗ " + text)
        }
        // Each figure marked on its own: a row in "slower" may have one figure that improved.
        var parts: [String] = []
        func mark(_ judgement: FigureChange.Judgement, _ text: String) -> String {
            judgement == .slower ? style.bad("✗ " + text) : style.good("✓ " + text)
        }
        if let t = row.throughput, t.judgement == .slower || t.judgement == .faster {
            parts.append(
                mark(t.judgement, "throughput \(figure(t.baseline, Self.opsPerSecond)) → \(figure(t.new, Self.opsPerSecond)) ops/s (\(signed(t.change)))"))
        }
        if let l = row.latencyP99, l.judgement == .slower || l.judgement == .faster {
            parts.append(mark(l.judgement, "p99 \(figure(l.baseline, Self.milliseconds)) → \(figure(l.new, Self.milliseconds)) ms (\(signed(l.change)))"))
        }
        return "\(row.name): " + parts.joined(separator: "; ")
    }

    private func table() -> [String] {
        let header = ["\(baseline.kind == .bench ? "cell" : "scenario")", "verdict", "ops/s", "change", "p99 ms", "change", "judgement"]
        let body = rows.map { row -> [String] in
            let verdict = [row.baseline?.verdict ?? "-", row.new?.verdict ?? "-"]
            return [
                row.name, verdict[0] == verdict[1] ? verdict[0] : "\(verdict[0]) → \(verdict[1])",
                pair(row.throughput, Self.opsPerSecond), row.throughput.map(changeCell) ?? "",
                pair(row.latencyP99, Self.milliseconds), row.latencyP99.map(changeCell) ?? "", row.outcome.label,
            ]
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.offset == cells.count - 1 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return [line(header), line(widths.map { String(repeating: "-", count: $0) })] + body.map(line)
    }

    private func pair(_ change: FigureChange?, _ format: (Double) -> String) -> String {
        guard let change else { return "" }
        return "\(figure(change.baseline, format)) → \(figure(change.new, format))"
    }

    private func changeCell(_ change: FigureChange) -> String {
        switch change.judgement {
        case .notJudged: return change.reason.map { "(\($0))" } ?? ""
        case .unchanged: return "\(signed(change.change)), noise"
        default: return signed(change.change)
        }
    }

    /// `1651` for one repetition, `1651 [1600–1700]` (median [min–max]) for several.
    private func figure(_ values: [Double], _ format: (Double) -> String) -> String {
        guard let middle = Self.median(values) else { return "n/a" }
        guard values.count > 1 else { return format(middle) }
        return "\(format(middle)) [\(format(values.min()!))–\(format(values.max()!))]"
    }

    static func opsPerSecond(_ value: Double) -> String { String(format: value >= 100 ? "%.0f" : "%.1f", value) }
    static func milliseconds(_ seconds: Double) -> String { String(format: seconds < 0.01 ? "%.2f" : "%.1f", seconds * 1000) }
    private func signed(_ change: Double?) -> String {
        guard let change else { return "n/a" }
        return String(format: "%+.1f%%", change * 100)
    }
    private func percent(_ value: Double) -> String { String(format: "%g %%", value * 100) }
}

extension EntryComparison.Outcome: CaseIterable {}
