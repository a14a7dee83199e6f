import Foundation
import LockProofScenario
import XCTest

/// `target:` in a scenario file (issue 18): a target file's path, relative to the scenario file;
/// every problem at its line and column with what was expected.
final class ScenarioTargetTests: XCTestCase {
    /// A folder with `targets/api.yaml` (any content: the parser checks only that it is a file)
    /// and `scenarios/`, where the scenario files go.
    private func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-scenario-target-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("targets"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: url.appendingPathComponent("scenarios"), withIntermediateDirectories: true)
        try "name: api\n".write(to: url.appendingPathComponent("targets/api.yaml"), atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func scenario(target line: String) -> String {
        """
        name: through-target
        case: charge-balance
        workload: {virtual_users: 2, iterations: 1}
        \(line)
        """
    }

    private func parse(_ text: String, in folder: URL) throws -> Scenario {
        let path = folder.appendingPathComponent("scenarios/s.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try ScenarioParser.load(path: path)
    }

    private func problems(_ text: String, in folder: URL) throws -> [String] {
        do {
            _ = try parse(text, in: folder)
            return []
        } catch let error as ScenarioValidationError {
            return error.problems.map(\.description)
        }
    }

    func testTheTargetIsResolvedAgainstTheScenarioFilesFolder() throws {
        let root = try folder()
        let parsed = try parse(scenario(target: "target: ../targets/api.yaml"), in: root)
        let reference = try XCTUnwrap(parsed.target)
        XCTAssertEqual(reference.written, "../targets/api.yaml")
        XCTAssertEqual(reference.path, root.appendingPathComponent("targets/api.yaml").path)
        XCTAssertEqual(reference.line, 4)
        XCTAssertEqual(reference.column, 9)
        XCTAssertTrue(reference.names(root.appendingPathComponent("targets/../targets/api.yaml").path))
        XCTAssertFalse(reference.names(root.appendingPathComponent("scenarios/s.yaml").path))
        // Without the key: in process (nil), as before.
        XCTAssertNil(try parse(scenario(target: ""), in: root).target)
        // The shipped scenarios name none (they run in process unless --target is given).
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let charge = try ScenarioParser.load(path: shipped.appendingPathComponent("Scenarios/charge-balance-seed.yaml").path)
        XCTAssertNil(charge.target)
    }

    func testABadTargetIsReportedAtItsLineAndColumnWithWhatWasExpected() throws {
        let root = try folder()
        let file = root.appendingPathComponent("scenarios/s.yaml").path
        let cases: [(String, String)] = [
            // Relative to the scenario file, not to the current folder: targets/api.yaml is not beside it.
            ("target: targets/api.yaml", "\(file):4:9: error: target: found 'targets/api.yaml', and \(root.path)/scenarios/targets/api.yaml is not a file; expected the path of a target file (e.g. ../targets/shop.yaml), relative to this scenario file"),
            ("target: ../targets", "\(file):4:9: error: target: found '../targets', and \(root.path)/targets is not a file; expected the path"),
            ("target: [../targets/api.yaml]", "\(file):4:9: error: target: found a list; expected the path of a target file"),
            ("target: ''", "\(file):4:9: error: target: found ''; expected the path of a target file"),
            ("target:", "\(file):4:8: error: target: found null; expected the path of a target file"),
            ("target: ../scenarios/s.yaml.bak", "is not a file"),
            ("targte: ../targets/api.yaml", "\(file):4:1: error: scenario: unknown key 'targte' (did you mean 'target'?)"),
        ]
        for (line, expected) in cases {
            let found = try problems(scenario(target: line), in: root)
            XCTAssertEqual(found.count, 1, "\(line): \(found)")
            XCTAssertTrue(found.first?.contains(expected) == true, "\(line): expected '\(expected)', got \(found)")
        }
        // A file that is there but is not YAML by its name.
        try "x".write(toFile: root.appendingPathComponent("targets/api.txt").path, atomically: true, encoding: .utf8)
        let found = try problems(scenario(target: "target: ../targets/api.txt"), in: root)
        XCTAssertEqual(found, ["\(file):4:9: error: target: found '../targets/api.txt'; expected a target file ending in .yaml or .yml"])
    }
}
