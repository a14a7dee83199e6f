import Foundation
import Yams

/// Walks the node tree, converting values and collecting problems with their positions. Each
/// section of a scenario file has its own file beside this one (`ScenarioSection`, `MixSection`,
/// `SeedSection`, `WorkloadSection`, `FaultsSection`, `ThresholdsSection`).
struct ScenarioReader {
    let file: String
    /// The problems found, with their positions (at most `ScenarioParser.maximumReportedProblems`).
    var collected: ProblemList
    var problems: [ScenarioProblem] { collected.problems }

    init(file: String) {
        self.file = file
        self.collected = ProblemList(file: file)
    }

    mutating func problem(_ node: Node?, _ message: String) {
        // A message quotes what it found; a value of a megabyte must not be copied into it whole.
        collected.add(node, message.count <= 400 ? message : message.prefix(250) + " … " + message.suffix(120))
    }

    /// The mapping's entries, checking that every key is known and none repeats.
    mutating func entries(_ node: Node, known: [String], section: String) -> [String: (key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            problem(node, "\(section): found \(describe(node)); expected a mapping")
            return [:]
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.string, case .scalar = key else {
                problem(key, "\(section): found \(describe(key)) as a key; expected one of \(known.joined(separator: ", "))")
                continue
            }
            if result[name] != nil {
                problem(key, "\(section): '\(name)' appears twice")
                continue
            }
            if !known.contains(name) {
                let hint = closest(name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                problem(key, "\(section): unknown key '\(name)'\(hint); expected one of \(known.joined(separator: ", "))")
                continue
            }
            result[name] = (key, value)
        }
        return result
    }

    mutating func string(_ node: Node, _ field: String) -> String? {
        guard case .scalar = node, let text = node.string, node.null == nil || !text.isEmpty else {
            problem(node, "\(field): found \(describe(node)); expected a string")
            return nil
        }
        return text
    }

    mutating func integer(_ node: Node, _ field: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = strictInteger(scalar.string) else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a whole number in \(range.lowerBound)…\(range.upperBound)")
            return nil
        }
        guard range.contains(value) else {
            problem(node, "\(field): found \(value); expected a whole number in \(range.lowerBound)…\(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ field: String, range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = strictDecimal(scalar.string) else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a number in \(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))")
            return nil
        }
        guard range.contains(value) else {
            problem(node, "\(field): found \(formatNumber(value)); expected a number in \(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))")
            return nil
        }
        return value
    }

    mutating func boolean(_ node: Node, _ field: String) -> Bool? {
        guard case .scalar = node, let value = node.bool else {
            problem(node, "\(field): found \(describe(node)); expected true or false")
            return nil
        }
        return value
    }

    mutating func choice<T: RawRepresentable>(_ node: Node, _ field: String, _ options: [T]) -> T? where T.RawValue == String {
        guard let text = string(node, field) else { return nil }
        guard let value = options.first(where: { $0.rawValue == text }) else {
            problem(node, "\(field): found '\(text)'; expected one of \(options.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }

    /// `10s`, `500ms`, `2m`, or a bare number of seconds.
    mutating func duration(_ node: Node, _ field: String) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a duration such as 30s, 500ms or 2m")
            return nil
        }
        let text = scalar.string
        guard let seconds = numberOrDuration(text)?.value else {
            problem(node, "\(field): found \(describe(node)); expected a positive duration such as 30s, 500ms or 2m")
            return nil
        }
        guard seconds > 0, seconds <= Self.longestDurationSeconds else {
            problem(
                node,
                "\(field): found \(text.prefix(40)) (\(formatNumber(seconds)) s); expected more than 0 and at most \(formatNumber(Self.longestDurationSeconds)) s (24 hours), such as 30s, 500ms or 2m")
            return nil
        }
        return seconds
    }

    /// The longest duration a scenario may write (a run, a timeout, a fault's start, length or
    /// interval): a day. Longer is a typo, and a run of that length is no test.
    static let longestDurationSeconds: Double = 86_400
}
