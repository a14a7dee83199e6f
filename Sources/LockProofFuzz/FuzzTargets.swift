import Foundation
import LockProofScenario

/// The two parsers that read untrusted text: the scenario parser (a whole YAML file) and the
/// threshold expression parser (a metric target and `AGG OP NUMBER`, reached through a scenario
/// like every user input). Each input must end in a scenario or in validation problems, never in
/// a crash, a hang or an unbounded report; a broken invariant stops the process (a finding).
enum FuzzTarget: String, CaseIterable {
    case scenario
    case threshold

    /// Runs one input.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .scenario:
            check(String(decoding: bytes, as: UTF8.self), inputBytes: bytes.count)
        case .threshold:
            // The first line is the metric target, the rest the expression; both travel as YAML
            // double-quoted strings, escaped so that the input cannot change the document's shape.
            let text = String(decoding: bytes, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let target = parts.count > 1 ? String(parts[0]) : "latency"
            let expression = String(parts.last ?? "")
            let yaml = """
                name: fuzz
                case: charge-balance
                strategy: seed
                workload: {virtual_users: 2, iterations: 2}
                thresholds:
                  \(yamlQuoted(target)): [\(yamlQuoted(expression))]
                """
            check(yaml, inputBytes: bytes.count)
        }
    }

    private func check(_ text: String, inputBytes: Int) {
        do {
            _ = try ScenarioParser.parse(text, file: "fuzz.yaml")
        } catch let error as ScenarioValidationError {
            invariant(!error.problems.isEmpty, "a validation error without a problem")
            invariant(
                error.problems.count <= ScenarioParser.maximumReportedProblems + 1,
                "\(error.problems.count) problems reported, more than the cap")
            for problem in error.problems {
                invariant(problem.line >= 1 && problem.column >= 1, "a problem at \(problem.line):\(problem.column)")
                invariant(problem.message.utf8.count <= 2_000, "a problem message of \(problem.message.utf8.count) bytes")
            }
        } catch {
            invariant(false, "the parser threw \(type(of: error)), not a validation error: \(error)")
        }
    }
}

/// A YAML double-quoted scalar holding `text` exactly.
func yamlQuoted(_ text: String) -> String {
    var quoted = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0xFEFF
                || scalar.value == 0x2028 || scalar.value == 0x2029
            {
                quoted += String(format: "\\u%04X", scalar.value)
            } else {
                quoted.unicodeScalars.append(scalar)
            }
        }
    }
    return quoted + "\""
}

func invariant(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("lockproof-fuzz: invariant broken: \(message())\n".utf8))
        abort()
    }
}
