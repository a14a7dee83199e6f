import Foundation
import Yams

/// Reads and validates target files (`targets/NAME.yaml`) before anything runs. Problems are
/// reported like a scenario file's: `FILE:LINE:COLUMN: error: FIELD: found …; expected …`, every
/// problem of the file (up to `ScenarioParser.maximumReportedProblems`), never the file's text.
public enum TargetParser {
    public static func load(path: String) throws -> Target {
        try parse(YAMLFile.read(path: path, unreadable: "cannot read the target file (does it exist?)", kind: "target"), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Target {
        let root = try YAMLFile.mappingRoot(
            text, file: file, kind: "target",
            expected: "a mapping with keys name, instances, database, operations, reset, seed, state")
        var reader = TargetReader(file: file)
        let target = reader.target(root)
        try reader.collected.throwIfAny()
        return target!
    }
}

/// Walks a target file's node tree, converting values and collecting problems with their
/// positions. Each part of the file has its own file beside this one: `TargetFileSection` (the
/// file's keys, instances), `TargetOperationsSection` (requests and their templates),
/// `TargetResponsesSection` (response rules), `TargetSQLSection` (reset, seed and state SQL).
struct TargetReader {
    let file: String
    /// The problems found, with their positions (at most `ScenarioParser.maximumReportedProblems`).
    var collected: ProblemList

    init(file: String) {
        self.file = file
        self.collected = ProblemList(file: file)
    }

    static let topKeys = [
        "name", "description", "instances", "database", "http", "operations", "responses", "otherwise", "reset", "seed", "state",
    ]
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    /// Bounds on a timeout: no request without one, none longer than five minutes.
    static let longestTimeoutSeconds = 300.0

    mutating func problem(_ node: Node?, _ message: String) {
        // Found values are quoted at most 80 characters long, so a message is long only when it lists
        // what was expected (the reasons): that list is kept whole; anything longer is cut.
        collected.add(node, message.count <= 1200 ? message : message.prefix(900) + " … " + message.suffix(120))
    }

    /// The mapping's entries in file order, each key known and none repeated.
    mutating func entries(_ node: Node, known: [String]?, section: String) -> [(name: String, key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            problem(node, "\(section): found \(describe(node)); expected a mapping")
            return []
        }
        var result: [(name: String, key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar = key, let name = key.string, !name.isEmpty else {
                problem(key, "\(section): found \(describe(key)) as a key; expected a name")
                continue
            }
            if result.contains(where: { $0.name == name }) {
                problem(key, "\(section): '\(name)' appears twice")
                continue
            }
            if let known, !known.contains(name) {
                let hint = closest(name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                problem(key, "\(section): unknown key '\(name)'\(hint); expected one of \(known.joined(separator: ", "))")
                continue
            }
            result.append((name, key, value))
        }
        return result
    }

    func lookup(_ entries: [(name: String, key: Node, value: Node)], _ name: String) -> Node? {
        entries.first { $0.name == name }?.value
    }

    mutating func string(_ node: Node, _ field: String, nonEmpty: Bool = true) -> String? {
        guard case .scalar = node, let text = node.string, node.null == nil || !text.isEmpty else {
            problem(node, "\(field): found \(describe(node)); expected a string")
            return nil
        }
        if nonEmpty, text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            problem(node, "\(field): found an empty string; expected a value")
            return nil
        }
        return text
    }

    mutating func list(_ node: Node, _ field: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            problem(node, "\(field): found \(describe(node)); expected a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func timeout(_ node: Node, _ field: String) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let parsed = numberOrDuration(scalar.string), parsed.unit != nil
        else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a duration with its unit, such as 2s or 500ms")
            return nil
        }
        guard parsed.value > 0, parsed.value <= Self.longestTimeoutSeconds else {
            problem(node, "\(field): found \(scalar.string.prefix(40)); expected more than 0 and at most \(formatNumber(Self.longestTimeoutSeconds)) s")
            return nil
        }
        return parsed.value
    }
}
