import Foundation
import Yams

/// What the scenario and target parsers share: the file read under the size cap, its YAML composed
/// into one mapping (a YAML error at its own line and column), and the problems found collected up
/// to `ScenarioParser.maximumReportedProblems`, then counted.
enum YAMLFile {
    /// The text of the file at `path`. `unreadable` is the message for a missing file; `kind`
    /// ("scenario", "target") names the file in the size limit's message.
    static func read(path: String, unreadable: String, kind: String) throws -> String {
        func refuse(_ message: String) -> ScenarioValidationError {
            ScenarioValidationError(problems: [ScenarioProblem(file: path, line: 1, column: 1, message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: path)
        else { throw refuse(unreadable) }
        defer { try? handle.close() }
        // Read at most one byte past the cap: the size is known without reading the rest.
        let data = (try? handle.read(upToCount: ScenarioParser.maximumFileBytes + 1)) ?? Data()
        guard data.count <= ScenarioParser.maximumFileBytes else { throw refuse(tooLarge(kind)) }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("the file is not UTF-8 text") }
        return text
    }

    static func tooLarge(_ kind: String) -> String {
        "the file is larger than \(ScenarioParser.maximumFileBytes / 1024) KiB, the limit for a \(kind) file"
    }

    /// The root node of `text`, a mapping; anything else is one problem saying it expected
    /// `expected` (`a mapping with keys …`).
    static func mappingRoot(_ text: String, file: String, kind: String, expected: String) throws -> Node {
        guard text.utf8.count <= ScenarioParser.maximumFileBytes else {
            throw ScenarioValidationError(problems: [ScenarioProblem(file: file, line: 1, column: 1, message: tooLarge(kind))])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ScenarioValidationError(problems: [ScenarioParser.yamlProblem(error, text: text, file: file)])
        }
        guard let root, case .mapping = root else {
            throw ScenarioValidationError(problems: [
                ScenarioProblem(
                    file: file, line: root?.mark?.line ?? 1, column: root?.mark?.column ?? 1,
                    message: "found \(root.map(describe) ?? "an empty file"); expected \(expected)")
            ])
        }
        return root
    }
}

/// The problems found in one file with their positions: the first
/// `ScenarioParser.maximumReportedProblems` kept, the rest only counted, so memory stays bounded.
struct ProblemList {
    let file: String
    private(set) var problems: [ScenarioProblem] = []
    private(set) var unreported = 0

    init(file: String) { self.file = file }

    /// `message` as the caller bounded it (a message quotes what it found).
    mutating func add(_ node: Node?, _ message: @autoclosure () -> String) {
        guard problems.count < ScenarioParser.maximumReportedProblems else {
            unreported += 1
            return
        }
        problems.append(
            ScenarioProblem(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: message()))
    }

    /// Throws every problem kept, then one saying how many more there were; nothing when none.
    func throwIfAny() throws {
        guard !problems.isEmpty else { return }
        var all = problems
        if unreported > 0 {
            all.append(
                ScenarioProblem(
                    file: file, line: 1, column: 1,
                    message: "\(unreported) more problems not shown (the first \(ScenarioParser.maximumReportedProblems) are above)"))
        }
        throw ScenarioValidationError(problems: all)
    }
}
