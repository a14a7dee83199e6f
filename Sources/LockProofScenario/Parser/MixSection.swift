import Foundation
import LockProofCommerce
import Yams

/// `workload.mix`: the operations, their weights and strategies.
extension ScenarioReader {
    mutating func mix(_ node: Node, caseName: CaseName?, strategy: String) -> [OperationSpec] {
        let allNames = CaseName.allCases.flatMap(\.operations).map(\.rawValue)
        let fields = entries(node, known: allNames, section: "workload.mix")
        var result: [OperationSpec] = []
        for name in fields.keys.sorted() {
            let value = fields[name]!.value
            let operation = OperationName(rawValue: name)!
            let operationCase = operation.caseName
            var spec = OperationSpec(operation: operation, strategy: operationCase == caseName ? strategy : "seed", weight: 1)
            let field = "workload.mix.\(name)"
            if case .mapping = value {
                let parts = entries(value, known: ["weight", "strategy"], section: field)
                if let entry = parts["weight"] {
                    guard let weight = integer(entry.value, "\(field).weight", range: 0...1_000_000_000) else { continue }
                    spec.weight = weight
                }
                if let entry = parts["strategy"], let text = string(entry.value, "\(field).strategy") {
                    guard operationCase.strategyNames.contains(text) else {
                        problem(entry.value, "\(field).strategy: found '\(text)'; \(name) (\(operationCase.rawValue)) has \(operationCase.strategyNames.joined(separator: ", "))")
                        continue
                    }
                    spec.strategy = text
                }
            } else {
                guard let weight = integer(value, field, range: 0...1_000_000_000) else { continue }
                spec.weight = weight
            }
            // Weight 0 leaves an operation out, as before.
            if spec.weight > 0 { result.append(spec) }
        }
        if !fields.isEmpty && result.isEmpty && problems.isEmpty {
            problem(node, "workload.mix: every weight is 0; expected at least one positive weight")
        }
        if case .mapping(let mapping) = node, mapping.count == 0 {
            problem(node, "workload.mix: found an empty mapping; expected operation: weight entries")
        }
        return result
    }

    /// A mix whose weights leave an operation with no slot at some client count cannot be what
    /// was meant (a race of complete against cancel with no cancel): refuse it and say why.
    mutating func checkEveryOperationRuns(_ plan: MixPlan, _ node: Node, virtualUsers: [Int], iterations: Int) {
        for count in virtualUsers {
            let slots = count * iterations
            let runs = plan.counts(slots: slots)
            if let idle = plan.operations.indices.first(where: { runs[$0] == 0 }) {
                let shares = zip(plan.operations, runs).map { "\($0.name) \($1)" }.joined(separator: ", ")
                problem(
                    node,
                    "workload.mix: with \(count) virtual users × \(iterations) iterations = \(slots) operations, weights totalling \(plan.total) give \(shares): \(plan.operations[idle].name) never runs, so nothing races it; lower the weights or run more operations")
                return
            }
        }
    }
}
