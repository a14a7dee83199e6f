import Foundation
import Yams

/// A problem in a scenario file, with where it is.
public struct ScenarioProblem: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String { "\(file):\(line):\(column): error: \(message)" }
}

/// Every problem found in one file (validation reports them all, not just the first).
public struct ScenarioValidationError: Error, Sendable, CustomStringConvertible {
    public let problems: [ScenarioProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads and validates scenario files before anything runs.
public enum ScenarioParser {
    /// A scenario file is a page of YAML; anything larger is refused before it is parsed, so that
    /// a huge file (or /dev/zero) costs neither time nor memory.
    public static let maximumFileBytes = 1 << 20
    /// At most this many problems of one file are reported, then how many more there were.
    public static let maximumReportedProblems = 50

    public static func load(path: String) throws -> Scenario {
        try parse(YAMLFile.read(path: path, unreadable: "cannot read the file (does it exist?)", kind: "scenario"), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Scenario {
        let root = try YAMLFile.mappingRoot(
            text, file: file, kind: "scenario", expected: "a mapping with keys name, case, workload, …")
        var reader = ScenarioReader(file: file)
        let scenario = reader.scenario(root)
        try reader.collected.throwIfAny()
        return scenario!
    }

    /// A YAML error at its own line and column. Never the text of the file: Yams puts the whole
    /// input into some of its errors (duplicate keys), which would copy a file into the message.
    static func yamlProblem(_ error: YamlError, text: String, file: String) -> ScenarioProblem {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "not valid YAML: \(problem.prefix(200))\(context.map { " \($0.text.prefix(200))" } ?? "")")
        case .composer(_, let problem, let mark, _) where problem.contains("another document"):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "a second YAML document starts here; a scenario file holds exactly one")
        case .composer(let context, let problem, let mark, _):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "not valid YAML: \(problem.prefix(200))\(context.map { " \($0.text.prefix(200))" } ?? "")")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? ""
            let first = context.mark
            let repeated = repeatedKeyMark(key, after: first, in: text) ?? (first.line, first.column)
            let shown = key.count <= 64 ? "'\(key)'" : "a key"
            return ScenarioProblem(
                file: file, line: repeated.line, column: repeated.column,
                message: "\(shown) appears twice in one mapping (first at \(first.line):\(first.column))")
        case .reader(let problem, let offset, _, _):
            let (line, column) = offset.map { position(ofCharacterOffset: $0, in: text) } ?? (1, 1)
            return ScenarioProblem(file: file, line: line, column: column, message: "not valid YAML: \(problem.prefix(200))")
        default:
            return ScenarioProblem(file: file, line: 1, column: 1, message: "not valid YAML")
        }
    }

    /// Where `key` is written again as a key after its first occurrence: Yams reports only the
    /// first. A key is the name at the start of a line's content, or after `{` or `,`, followed
    /// (perhaps after quotes and spaces) by `:`.
    static func repeatedKeyMark(_ key: String, after first: Mark, in text: String) -> (line: Int, column: Int)? {
        guard !key.isEmpty else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where index + 1 >= first.line {
            let characters = Array(line)
            let start = index + 1 == first.line ? first.column : 0
            var column = start
            while column < characters.count {
                defer { column += 1 }
                let before = characters[..<column].last { $0 != " " && $0 != "\t" }
                guard before == nil || before == "{" || before == "," || before == "-" || before == "?" else { continue }
                var cursor = column
                if cursor < characters.count, characters[cursor] == "\"" || characters[cursor] == "'" { cursor += 1 }
                let name = Array(key)
                guard cursor + name.count <= characters.count, Array(characters[cursor..<(cursor + name.count)]) == name else { continue }
                cursor += name.count
                if cursor < characters.count, characters[cursor] == "\"" || characters[cursor] == "'" { cursor += 1 }
                while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                if cursor < characters.count, characters[cursor] == ":" { return (index + 1, column + 1) }
            }
        }
        return nil
    }

    private static func position(ofCharacterOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
