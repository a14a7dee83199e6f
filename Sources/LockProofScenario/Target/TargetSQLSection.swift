import Foundation
import Yams

// reset, seed and state: the target's SQL statements and their `:name` parameters.

extension TargetReader {
    /// One statement or a list of them; `:name` parameters among `allowed` only.
    mutating func statements(_ node: Node, _ field: String, allowed: [String], single: Bool = false) -> [TargetStatement] {
        let elements: [(Node, String)]
        if case .sequence(let sequence) = node, !single {
            elements = sequence.enumerated().map { ($0.element, "\(field)[\($0.offset)]") }
            if sequence.isEmpty { problem(node, "\(field): found an empty list; expected SQL statements") }
        } else {
            elements = [(node, field)]
        }
        var result: [TargetStatement] = []
        for (element, name) in elements {
            guard case .scalar = element, let text = string(element, name) else {
                if case .scalar = element {} else if single {
                    problem(element, "\(name): expected one SQL query as a string")
                }
                continue
            }
            let statement = TargetStatement(source: text, line: element.mark?.line ?? 1)
            let unknown = statement.parameters.filter { !allowed.contains($0) }
            if let first = unknown.first {
                if allowed.isEmpty {
                    problem(element, "\(name): found the parameter :\(first.prefix(40)); expected none here (a statement without parameters)")
                } else {
                    let hint = closest(first, in: allowed).map { " (did you mean ':\($0)'?)" } ?? ""
                    problem(element, "\(name): found the parameter :\(first.prefix(40))\(hint); expected only \(allowed.map { ":" + $0 }.joined(separator: ", "))")
                }
                continue
            }
            if sqlWords(text).isEmpty {
                problem(element, "\(name): expected an SQL statement")
                continue
            }
            result.append(statement)
        }
        return result
    }
}

/// The words of an SQL text, lowercased, quotes dropped: `"user"` and `user` are both `user`.
func sqlWords(_ text: String) -> [String] {
    text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init)
}
