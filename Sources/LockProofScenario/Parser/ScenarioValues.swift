import Foundation
import Yams

/// A whole number as a person writes it: digits, optionally grouped by single underscores
/// (`10_000`), optionally signed. Not `1__0`, `0x10`, `1e3` or `+`: YAML 1.1 reads such forms as
/// numbers in ways no reader of the file expects.
func strictInteger(_ text: String) -> Int? {
    var digits = Substring(text)
    if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
    let groups = digits.split(separator: "_", omittingEmptySubsequences: false)
    guard !digits.isEmpty, groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
    return Int(text.replacingOccurrences(of: "_", with: ""))
}

/// The units a duration may carry (k6's spelling), in seconds.
let durationUnits: [(suffix: String, seconds: Double)] = [("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60)]

/// `50ms` as 0.05 seconds and its unit "ms"; a bare number as itself without a unit; nil when neither.
func numberOrDuration(_ text: String) -> (value: Double, unit: String?)? {
    if let number = strictDecimal(text) { return (number, nil) }
    // Longest suffix first: "ms" before "s" and "m".
    for unit in durationUnits.sorted(by: { $0.suffix.count > $1.suffix.count }) where text.hasSuffix(unit.suffix) {
        let number = String(text.dropLast(unit.suffix.count)).trimmingCharacters(in: .whitespaces)
        if let value = strictDecimal(number) { return (value * unit.seconds, unit.suffix) }
    }
    return nil
}

/// A decimal number: `12`, `0.5`, `.5`, `2.5e-3`. Not hexadecimal (`0x1p3`, which Swift's
/// `Double(_:)` accepts), not `inf` or `nan`, no underscores.
func strictDecimal(_ text: String) -> Double? {
    var rest = Substring(text)
    if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
    func digits() -> Int {
        let count = rest.prefix { $0.isASCII && $0.isNumber }.count
        rest = rest.dropFirst(count)
        return count
    }
    var mantissaDigits = digits()
    if rest.first == "." {
        rest = rest.dropFirst()
        mantissaDigits += digits()
    }
    guard mantissaDigits > 0 else { return nil }
    if rest.first == "e" || rest.first == "E" {
        rest = rest.dropFirst()
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        guard digits() > 0 else { return nil }
    }
    guard rest.isEmpty, let value = Double(text), value.isFinite else { return nil }
    return value
}

/// Like `describe`, but says when a number was quoted (a string, not a number).
func describeNumberLike(_ node: Node) -> String {
    if case .scalar(let scalar) = node, scalar.style != .plain, strictDecimal(scalar.string) != nil {
        return "the quoted string '\(scalar.string.prefix(40))' (write numbers without quotes)"
    }
    return describe(node)
}

func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
        if scalar.string.isEmpty || node.null != nil { return "null" }
        // Not `node.int`: Yams reads YAML 1.1 base-60 integers (`99999:59:59:…`) with arithmetic
        // that traps on overflow, which crashed `lockproof check` (found by `make fuzz`).
        if strictInteger(scalar.string) != nil || strictDecimal(scalar.string) != nil { return "the number \(scalar.string)" }
        if node.bool != nil { return "the boolean \(scalar.string)" }
        return scalar.string.count <= 60 ? "the string '\(scalar.string)'" : "the string '\(scalar.string.prefix(60))…'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

/// The known word nearest to a misspelling, if it is near enough to be a likely typo.
func closest(_ word: String, in candidates: [String]) -> String? {
    func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
    let best = candidates.map { ($0, distance(word, $0)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, word.count / 4) else { return nil }
    return best.0
}
