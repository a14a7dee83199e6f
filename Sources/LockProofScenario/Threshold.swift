import Foundation
import LockProofLocking

/// A k6-style threshold: `p(99) < 50ms` on `lockproof_lock_wait_seconds{lock="redis"}`. A limit on
/// a duration carries its unit (us, µs, ms, s, m); `limit` is in seconds.
public struct Threshold: Sendable, Equatable {
    public enum Aggregation: Sendable, Equatable, CustomStringConvertible {
        case count, rate, avg, min, max, med, value
        case percentile(Double)

        public var description: String {
            switch self {
            case .count: return "count"
            case .rate: return "rate"
            case .avg: return "avg"
            case .min: return "min"
            case .max: return "max"
            case .med: return "med"
            case .value: return "value"
            case .percentile(let p): return "p(\(formatNumber(p)))"
            }
        }
    }

    public enum Comparison: String, Sendable, CaseIterable {
        case lessOrEqual = "<="
        case greaterOrEqual = ">="
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case greater = ">"

        func holds(_ observed: Double, _ limit: Double) -> Bool {
            switch self {
            case .less: return observed < limit
            case .lessOrEqual: return observed <= limit
            case .greater: return observed > limit
            case .greaterOrEqual: return observed >= limit
            case .equal: return observed == limit
            case .notEqual: return observed != limit
            }
        }
    }

    public let metric: String
    public let labels: [String: String]
    public let aggregation: Aggregation
    public let comparison: Comparison
    public let limit: Double
    /// As written in the scenario file.
    public let expression: String

    /// `metric{labels}` as written, for reports.
    public var target: String {
        labels.isEmpty ? metric : metric + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    /// Which aggregations each kind of metric offers.
    static func allowed(for kind: MetricKind) -> String {
        switch kind {
        case .counter: return "count, rate"
        case .histogram: return "avg, min, max, med, p(N), count"
        case .gauge: return "value, min, max"
        }
    }

    static func aggregationFits(_ aggregation: Aggregation, _ kind: MetricKind) -> Bool {
        switch (kind, aggregation) {
        case (.counter, .count), (.counter, .rate): return true
        case (.histogram, .avg), (.histogram, .min), (.histogram, .max), (.histogram, .med), (.histogram, .percentile), (.histogram, .count):
            return true
        case (.gauge, .value), (.gauge, .min), (.gauge, .max): return true
        default: return false
        }
    }

    /// Is this aggregation of a metric of `kind` a duration? Every trend LockProof records is in
    /// seconds; its `count` is a number of samples.
    static func isDuration(_ aggregation: Aggregation, _ kind: MetricKind) -> Bool {
        kind == .histogram && aggregation != .count
    }

    /// Refuses a bare number on a duration (`p(99) < 50` used to mean 50 seconds, silently) and a
    /// unit on a number (`count > 5ms`).
    static func checkUnit(_ unit: String?, aggregation: Aggregation, comparison: Comparison, kind: MetricKind, limit: Double, text: String) throws {
        let duration = isDuration(aggregation, kind)
        if duration, unit == nil {
            throw ThresholdSyntaxError(
                "'\(text)' gives a duration without a unit; write it with one (us, ms, s, m): '\(aggregation) \(comparison.rawValue) \(durationText(limit))' is what it meant until now (a bare number was read as seconds)")
        }
        if !duration, let unit {
            throw ThresholdSyntaxError("'\(text)': \(aggregation) of a \(kind.thresholdName) is a number, not a duration; drop the unit '\(unit)'")
        }
    }

    /// Seconds with the unit that reads best: `50ms` for 0.05, `250us`, `5s`.
    static func durationText(_ seconds: Double) -> String {
        if seconds != 0 && abs(seconds) < 0.001 { return formatNumber(seconds * 1e6) + "us" }
        return seconds != 0 && abs(seconds) < 1 ? formatNumber(seconds * 1000) + "ms" : formatNumber(seconds) + "s"
    }

    /// Parses `AGG OP LIMIT` (LIMIT a number, or a duration with its unit); throws a message
    /// saying what was expected.
    static func parseExpression(_ text: String) throws -> (Aggregation, Comparison, Double, unit: String?) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let comparison = Comparison.allCases.first(where: { trimmed.contains($0.rawValue) }),
            let range = trimmed.range(of: comparison.rawValue)
        else {
            throw ThresholdSyntaxError("no comparison in '\(text)'; expected AGGREGATION OP LIMIT such as 'p(95) < 200ms' with OP one of < <= > >= == !=")
        }
        let left = trimmed[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
        let right = trimmed[range.upperBound...].trimmingCharacters(in: .whitespaces)
        guard let (limit, unit) = numberOrDuration(right) else {
            throw ThresholdSyntaxError("'\(right)' in '\(text)' is not a number or a duration (such as 200ms, 5s)")
        }
        let aggregation: Aggregation
        switch left {
        case "count": aggregation = .count
        case "rate": aggregation = .rate
        case "avg": aggregation = .avg
        case "min": aggregation = .min
        case "max": aggregation = .max
        case "med": aggregation = .med
        case "value": aggregation = .value
        default:
            guard left.hasPrefix("p("), left.hasSuffix(")"), let p = strictDecimal(String(left.dropFirst(2).dropLast())), p > 0, p <= 100
            else {
                throw ThresholdSyntaxError(
                    "'\(left)' in '\(text)' is not an aggregation; expected count, rate, avg, min, max, med, value or p(N) with 0 < N ≤ 100")
            }
            aggregation = .percentile(p)
        }
        return (aggregation, comparison, limit, unit)
    }

    /// Parses `name` or `name{label="value",…}`.
    static func parseTarget(_ text: String) throws -> (String, [String: String]) {
        guard let brace = text.firstIndex(of: "{") else { return (text, [:]) }
        guard text.hasSuffix("}") else { throw ThresholdSyntaxError("'\(text)' opens '{' without closing it") }
        let name = String(text[..<brace])
        let inner = text[text.index(after: brace)..<text.index(before: text.endIndex)]
        var labels: [String: String] = [:]
        for part in inner.split(separator: ",") {
            let pieces = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pieces.count == 2, pieces[1].count >= 2, pieces[1].hasPrefix("\""), pieces[1].hasSuffix("\"") else {
                throw ThresholdSyntaxError("label filter '\(part)' in '\(text)' is not of the form name=\"value\"")
            }
            labels[pieces[0]] = String(pieces[1].dropFirst().dropLast())
        }
        return (name, labels)
    }
}

struct ThresholdSyntaxError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The outcome of one threshold at the end of a run.
public struct ThresholdResult: Sendable, Codable, Equatable {
    public let metric: String
    public let expression: String
    /// Nil when the metric recorded no sample: the threshold fails, never passes vacuously.
    public let observed: Double?
    public let passed: Bool
    public let message: String
    /// Set when the run recorded too few samples for the percentile to mean anything (see
    /// `Threshold.minimumSamples`): the threshold is judged all the same, and the report says so.
    public var warning: String? = nil
}

extension Threshold {
    /// Evaluates against what the run measured; `seconds` is the run's wall time (for rates).
    func evaluate(_ statistics: RunStatistics, seconds: Double) -> ThresholdResult {
        guard let kind = ThresholdMetric.all[metric]?.kind else {
            return ThresholdResult(metric: target, expression: expression, observed: nil, passed: false, message: "unknown metric")
        }
        let observed: Double?
        switch kind {
        case .counter:
            // Zero is a real observation only when the code path the counter watches ran.
            if witnessed(statistics) {
                let total = Double(statistics.count(metric, where: labels))
                observed = aggregation == .rate ? (seconds > 0 ? total / seconds : nil) : total
            } else {
                observed = nil
            }
        case .histogram:
            if let trend = statistics.trend(metric, where: labels) {
                switch aggregation {
                case .avg: observed = trend.average
                case .min: observed = trend.minimum
                case .max: observed = trend.maximum
                case .med: observed = trend.percentile(50)
                case .percentile(let p): observed = trend.percentile(p)
                case .count: observed = Double(trend.count)
                default: observed = nil
                }
            } else {
                observed = nil
            }
        case .gauge:
            observed = statistics.gauge(metric)
        }
        guard let observed else {
            return ThresholdResult(
                metric: target, expression: expression, observed: nil, passed: false,
                message: "\(target) recorded no sample in this run, so '\(expression)' cannot pass")
        }
        let passed = comparison.holds(observed, limit)
        var result = ThresholdResult(
            metric: target, expression: expression, observed: observed, passed: passed,
            message: "\(target) \(aggregation) = \(show(observed, kind)) \(passed ? "satisfies" : "breaks") \(comparison.rawValue) \(show(limit, kind))")
        result.warning = tooFewSamples(statistics)
        return result
    }

    /// A duration with its unit (`12.3ms`), as the limit is written; anything else as a number.
    func show(_ value: Double, _ kind: MetricKind) -> String {
        Self.isDuration(aggregation, kind) ? Self.durationText(value) : formatNumber(value)
    }

    /// The percentile this threshold reads (med is p(50)), if any.
    var percentile: Double? {
        switch aggregation {
        case .percentile(let p): return p
        case .med: return 50
        default: return nil
        }
    }

    /// The rule: a p(N) means something when at least 2 samples lie above it, so it needs
    /// 2 × 100 / (100 − N) samples: 200 for p(99), 40 for p(95), 20 for p(90), 4 for med.
    public static func minimumSamples(forPercentile p: Double) -> Int {
        p >= 100 ? 1 : Int((2 * 100 / (100 - p) - 1e-9).rounded(.up))
    }

    func tooFewSamples(_ statistics: RunStatistics) -> String? {
        guard let p = percentile, let samples = statistics.trend(metric, where: labels)?.count else { return nil }
        let needed = Self.minimumSamples(forPercentile: p)
        guard samples < needed else { return nil }
        return "'\(expression)' on \(target) was judged on \(samples) samples; a \(aggregation) needs at least \(needed) "
            + "(2 samples above it: 2 × 100/(100 − \(formatNumber(p)))): run longer, or use a lower percentile"
    }
}

extension Threshold {
    /// Did the path this counter watches run at least once? (A retry counter watches the retry
    /// wrapper, a lock counter the lock acquisitions, a compensation counter the gateway calls.)
    func witnessed(_ statistics: RunStatistics) -> Bool {
        switch metric {
        case "lockproof_retry_attempts_total", "lockproof_retry_exhausted_total", "lockproof_retry_calls_total",
            "lockproof_optimistic_conflicts_total":
            return statistics.count("lockproof_retry_calls_total") > 0
        case "lockproof_lock_acquire_failures_total":
            let lockFilter = labels.filter { $0.key == "lock" }
            return statistics.trend("lockproof_lock_wait_seconds", where: lockFilter) != nil
                || statistics.count(metric, where: lockFilter) > 0
        case "lockproof_distributed_lock_lost_total", RunStatistics.fencedWritesRefused, RunStatistics.circuitBreakerOpenings:
            return statistics.trend("lockproof_lock_wait_seconds", where: ["lock": "redis"]) != nil
        case "lockproof_compensations_total":
            return statistics.count(RunStatistics.gatewayCalls) > 0
        default:
            return statistics.count("throughput") > 0
        }
    }
}

func formatNumber(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
    if abs(value) >= 100 { return String(format: "%.1f", value) }
    return String(format: "%.4g", value)
}

extension Scenario {
    /// Before anything runs (`lockproof check`): percentile thresholds on the operation latency of
    /// a run whose iterations cannot reach the samples the percentile needs (see
    /// `Threshold.minimumSamples`). A run by duration is judged at its end only.
    public var shortRunWarnings: [String] {
        guard let iterations = workload.iterations, let fewestUsers = workload.virtualUsers.min() else { return [] }
        let operations = iterations * fewestUsers
        return thresholds.compactMap { threshold in
            guard ["latency", "lockproof_operation_duration_seconds"].contains(threshold.metric), let p = threshold.percentile else {
                return nil
            }
            let needed = Threshold.minimumSamples(forPercentile: p)
            guard operations < needed else { return nil }
            return "\(file): warning: '\(threshold.expression)' on \(threshold.metric) will be judged on \(operations) operations "
                + "(\(fewestUsers) virtual users × \(iterations) iterations); a \(threshold.aggregation) needs at least \(needed)"
        }
    }
}
