import Foundation
import Yams

/// `thresholds`: k6-style limits on the run's metrics.
extension ScenarioReader {
    mutating func thresholdList(_ node: Node, scenario: Scenario) -> [Threshold] {
        let cases = scenario.cases
        guard case .mapping(let mapping) = node else {
            problem(node, "thresholds: found \(describe(node)); expected a mapping of metric → list of expressions")
            return []
        }
        var thresholds: [Threshold] = []
        for (key, value) in mapping {
            guard let targetText = key.string else {
                problem(key, "thresholds: found \(describe(key)) as a key; expected a metric name")
                continue
            }
            let metricName: String
            let labels: [String: String]
            do {
                (metricName, labels) = try Threshold.parseTarget(targetText)
            } catch let error as ThresholdSyntaxError {
                problem(key, "thresholds: \(error.message)")
                continue
            } catch { continue }
            guard let metric = ThresholdMetric.all[metricName] else {
                if let reason = ThresholdMetric.unusable[metricName] {
                    problem(key, "thresholds: '\(metricName)' cannot have samples in a run: \(reason)")
                } else {
                    let names = ThresholdMetric.all.keys.sorted()
                    let hint = closest(metricName, in: names).map { " (did you mean '\($0)'?)" } ?? ""
                    problem(key, "thresholds: unknown metric '\(metricName)'\(hint); expected a catalog metric or one of throughput, latency, errors")
                }
                continue
            }
            guard !metric.cases.isDisjoint(with: cases) else {
                problem(key, "thresholds: '\(metricName)' cannot have samples in case \(scenario.caseLabel) (\(metric.help)); it applies to \(metric.cases.map(\.rawValue).sorted().joined(separator: ", "))")
                continue
            }
            if metricName == RunStatistics.fencedWritesRefused && !scenario.operations.contains(where: { $0.strategy == "redis-lock-fenced" }) {
                problem(key, "thresholds: '\(metricName)' cannot have samples: only redis-lock-fenced checks fencing tokens (this scenario runs \(scenario.strategyLabel))")
                continue
            }
            if metricName == "lockproof_pool_wait_seconds" && scenario.workload.connections == nil {
                problem(key, "thresholds: '\(metricName)' cannot have samples: the virtual users borrow from no pool (set workload.connections)")
                continue
            }
            var labelsValid = true
            for (label, labelValue) in labels {
                guard let allowed = metric.labels[label] else {
                    problem(key, "thresholds: '\(metricName)' has no label '\(label)'; it has \(metric.labels.keys.isEmpty ? "none" : metric.labels.keys.sorted().joined(separator: ", "))")
                    labelsValid = false
                    continue
                }
                if !allowed.contains(labelValue) {
                    problem(key, "thresholds: \(metricName){\(label)} found '\(labelValue)'; expected one of \(allowed.joined(separator: ", "))")
                    labelsValid = false
                }
            }
            if labelsValid, metricName.hasPrefix("lockproof_lock_") || metricName == "lockproof_distributed_lock_lost_total" {
                let taken = Set(scenario.locksTaken.map(\.rawValue))
                let wanted: Set<String> =
                    metricName == "lockproof_distributed_lock_lost_total" ? ["redis"] : labels["lock"].map { [$0] } ?? ["redis", "row"]
                if taken.isDisjoint(with: wanted) {
                    problem(key, "thresholds: '\(targetText)' cannot have samples: strategy \(scenario.strategyLabel) of \(scenario.caseLabel) takes \(taken.isEmpty ? "no lock" : "only \(taken.sorted().joined(separator: " and ")) locks")")
                    labelsValid = false
                }
            }
            guard labelsValid else { continue }
            guard case .sequence(let expressions) = value, !expressions.isEmpty else {
                problem(value, "thresholds.\(targetText): found \(describe(value)); expected a list of expressions such as [\"p(95) < 200ms\"]")
                continue
            }
            for expressionNode in expressions {
                guard let text = string(expressionNode, "thresholds.\(targetText)") else { continue }
                do {
                    let (aggregation, comparison, limit, unit) = try Threshold.parseExpression(text)
                    guard Threshold.aggregationFits(aggregation, metric.kind) else {
                        problem(expressionNode, "thresholds.\(targetText): '\(aggregation)' does not apply to a \(metric.kind.rawValue); expected \(Threshold.allowed(for: metric.kind))")
                        continue
                    }
                    try Threshold.checkUnit(unit, aggregation: aggregation, comparison: comparison, kind: metric.kind, limit: limit, text: text)
                    thresholds.append(
                        Threshold(metric: metricName, labels: labels, aggregation: aggregation, comparison: comparison, limit: limit, expression: text))
                } catch let error as ThresholdSyntaxError {
                    problem(expressionNode, "thresholds.\(targetText): \(error.message)")
                } catch {}
            }
        }
        return thresholds
    }
}
