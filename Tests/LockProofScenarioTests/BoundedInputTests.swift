import Foundation
import LockProofCommerce
import LockProofPostgres
import LockProofScenario
import LockProofTestSupport
import XCTest

/// Issue 11, bounded input: a huge file is refused at once, problems are capped, duplicate keys and
/// a second document are reported where they are without copying the file, number forms a reader
/// would not expect are refused, seeding is bounded by the timeout, and a database user without
/// the privileges a run needs is found before anything is written.
final class BoundedInputTests: XCTestCase {
    private let valid = """
        name: bounded
        case: charge-balance
        strategy: atomic
        seed: {users: 1}
        workload: {virtual_users: 2, iterations: 2}
        """

    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lp-bounded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func problems(_ yaml: String) -> [ScenarioProblem] {
        do {
            _ = try ScenarioParser.parse(yaml, file: "t.yaml")
            return []
        } catch let error as ScenarioValidationError {
            return error.problems
        } catch {
            XCTFail("unexpected \(error)")
            return []
        }
    }

    private func lockproof(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let result = try launch(try BuiltBinary.lockproof(), arguments, environment: TestServers.binaryEnvironment.merging(environment) { $1 })
        return (result.status, result.out, result.err)
    }

    func testAFileOverTheSizeCapIsRefusedAtOnceWithOneLine() throws {
        let folder = try temporaryFolder()
        let big = folder.appendingPathComponent("big.yaml")
        // 2 MiB of unknown keys: before the cap it was parsed and every key reported.
        let line = Array("unknown_key_0000000: 1\n".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 << 20)
        while bytes.count < 2 << 20 { bytes += line }
        try Data(bytes).write(to: big)
        for path in [big.path, "/dev/zero"] {
            let result = try lockproof(["check", path])
            XCTAssertEqual(result.status, 2, path)
            XCTAssertTrue(result.err.contains("larger than 1024 KiB"), result.err)
            XCTAssertLessThan(result.err.utf8.count, 300, "one line, not the file: \(result.err.prefix(500))")
        }
        // Exactly at the cap is still read (and judged on its content).
        XCTAssertEqual(ScenarioParser.maximumFileBytes, 1 << 20)
    }

    func testAtMostFiftyProblemsArePrintedThenACount() throws {
        let keys = (0..<200).map { "unknown_\($0): 1" }.joined(separator: "\n")
        let found = problems(valid + "\n" + keys)
        XCTAssertEqual(found.count, ScenarioParser.maximumReportedProblems + 1)
        XCTAssertTrue(found.last?.message.contains("150 more problems not shown") == true, "\(found.last!)")
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("many.yaml")
        try (valid + "\n" + keys).write(to: file, atomically: true, encoding: .utf8)
        let result = try lockproof(["check", file.path])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.err.split(separator: "\n").count, 51, result.err)
    }

    func testDuplicateKeysAreReportedWhereTheyRepeatWithoutCopyingTheFile() {
        let top = problems(valid + "\nname: again")
        XCTAssertEqual(top.map { "\($0.line):\($0.column)" }, ["6:1"], "\(top)")
        XCTAssertTrue(top.first?.message.contains("'name' appears twice") == true, "\(top)")
        XCTAssertTrue(top.first?.message.contains("first at 1:1") == true, "\(top)")
        XCTAssertFalse(top.first?.message.contains("charge-balance") == true, "the file is not copied: \(top)")

        let flow = problems(valid.replacingOccurrences(of: "seed: {users: 1}", with: "seed: {users: 1, users: 2}"))
        XCTAssertEqual(flow.map { "\($0.line):\($0.column)" }, ["4:18"], "\(flow)")

        let nested = problems(valid.replacingOccurrences(of: "seed: {users: 1}", with: "seed:\n  users: 1\n  balance: 5\n  users: 2"))
        XCTAssertEqual(nested.map { "\($0.line):\($0.column)" }, ["7:3"], "\(nested)")
    }

    /// Found by `make fuzz`: Yams reads `99999:59:…` as a YAML 1.1 base-60 integer with arithmetic
    /// that traps on overflow; describing such a value in a message crashed `lockproof check`.
    func testABase60NumberThatOverflowsIsAProblemNotACrash() {
        let huge = "99999:59:59:59:59:59:59:59:59:59:59:59:59"
        XCTAssertEqual(problems(valid.replacingOccurrences(of: "seed: {users: 1}", with: "seed: {users: \(huge)}")).count, 1)
        XCTAssertEqual(problems(huge).count, 1, "a document that is only such a number")
        XCTAssertEqual(problems(valid.replacingOccurrences(of: "seed: {users: 1}", with: "seed: {users: 1:30}")).count, 1)
    }

    func testAHugeValueIsNotCopiedIntoItsMessage() {
        let long = String(repeating: "k", count: 100_000)
        for yaml in [valid + "\n\(long): 1", valid.replacingOccurrences(of: "strategy: atomic", with: "strategy: \(long)")] {
            let found = problems(yaml)
            XCTAssertEqual(found.count, 1, "\(found.map(\.message.count))")
            XCTAssertLessThan(found.first?.message.count ?? .max, 500)
        }
    }

    func testASecondDocumentIsReportedWhereItStarts() {
        let found = problems(valid + "\n---\nname: other\n")
        XCTAssertEqual(found.map { "\($0.line):\($0.column)" }, ["6:1"], "\(found)")
        XCTAssertTrue(found.first?.message.contains("second YAML document") == true, "\(found)")
        XCTAssertLessThan(found.first?.message.count ?? 0, 120)
    }

    func testNumberFormsAReaderWouldNotExpectAreRefused() {
        let cases: [(String, String, String)] = [
            ("seed: {users: 1}", "seed: {users: \"5\"}", "quoted"),
            ("seed: {users: 1}", "seed: {users: '5'}", "quoted"),
            ("seed: {users: 1}", "seed: {users: 1__0}", "1__0"),
            ("seed: {users: 1}", "seed: {users: 0x10}", "0x10"),
            ("seed: {users: 1}", "seed: {users: 1_}", "1_"),
            ("iterations: 2}", "iterations: 2, timeout: 0x1p3}", "0x1p3"),
            ("iterations: 2}", "iterations: 2, timeout: \"30\"}", "quoted"),
            ("iterations: 2}", "iterations: 2, timeout: 0x1p3s}", "0x1p3s"),
            ("iterations: 2}", "iterations: 2, timeout: .inf}", "inf"),
            ("iterations: 2}", "iterations: 2, timeout: 1_0s}", "1_0s"),
        ]
        for (target, replacement, label) in cases {
            let found = problems(valid.replacingOccurrences(of: target, with: replacement))
            XCTAssertEqual(found.count, 1, "\(label): \(found)")
        }
        XCTAssertEqual(problems(valid + "\nthresholds:\n  throughput: [\"count < 0x1p3\"]").count, 1, "a hex float in a threshold")
        XCTAssertEqual(problems(valid.replacingOccurrences(of: "seed: {users: 1}", with: "seed: {users: 1_000}")), [], "10_000 style is kept")
        XCTAssertEqual(problems(valid.replacingOccurrences(of: "iterations: 2}", with: "iterations: 2, timeout: 1.5m}")), [])
    }

    func testSeedingIsBoundedByTheScenarioTimeout() throws {
        // 200,000 orders of 100 items each: 20 million rows, minutes of seeding; the timeout is 1 s.
        let yaml = """
            name: bounded-seed
            case: order-state
            strategy: seed
            seed: {users: 10, products: 100, orders: 200000, order_items: 100}
            workload: {virtual_users: 1, iterations: 1, timeout: 1s}
            """
        let scenario = try ScenarioParser.parse(yaml, file: "seed.yaml")
        let runner = ScenarioRunner(
            configuration: TestServers.configuration, shared: TestServers.shared, progress: ProgressReporter(enabled: false))
        let started = Date()
        XCTAssertThrowsError(try runner.run(scenario)) { error in
            XCTAssertTrue(String(describing: error).contains("workload.timeout"), "\(error)")
        }
        // A hang guard, far above the 1 s bound: unbounded, this seed runs for minutes.
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        // The session is usable again afterwards.
        XCTAssertEqual(try TestServers.database().query("SELECT 1").int(0, 0), 1)
    }

    func testADatabaseUserWithoutPrivilegesIsFoundBeforeAnythingIsWritten() throws {
        let admin = try TestServers.database()
        let role = "lockproof_no_privileges"
        try admin.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(role)') THEN CREATE ROLE \(role) LOGIN; END IF; END $$")
        try Schema.apply(admin)
        try admin.execute("GRANT SELECT ON users TO \(role)")
        let target = try PostgresTarget(conninfo: TestServers.configuration.databaseURL)
        let url = "postgresql://\(role)@\(target.host ?? "127.0.0.1"):\(target.port ?? "5432")/\(target.database ?? "lockproof")"
        XCTAssertFalse(try Schema.missingPrivileges(PostgresConnection(url)).isEmpty)
        XCTAssertEqual(try Schema.missingPrivileges(admin), [], "the test user has everything")

        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("privileges.yaml")
        try valid.write(to: file, atomically: true, encoding: .utf8)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(["run", file.path, "--report-dir", reports.path], environment: ["LOCKPROOF_DATABASE_URL": url])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("lacks privileges"), result.err)
        // Nothing ran; the refusal is reported as an error in the report folder (issue 15), the
        // only thing written.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: reports.path).sorted(), ["bounded.json", "junit.xml", "report.html"])
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: reports.appendingPathComponent("bounded.json"))) as? [String: Any])
        XCTAssertEqual(json["status"] as? String, "error")
        XCTAssertTrue((json["error"] as? String ?? "").contains("lacks privileges"), "\(json)")
    }
}
