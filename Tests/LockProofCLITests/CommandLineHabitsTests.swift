import Foundation
import XCTest

/// What users bring from k6 and pgbench (colour, --json, `run DIR`), and `lockproof compare`,
/// run through the built binary as the other CommandLineTests are.
extension CommandLineTests {
    /// Old code: "cannot read the file (does it exist?)".
    func testRunOfAFolderSaysToUseVerify() throws {
        let folder = try temporaryFolder()
        let result = try lockproof(["run", folder.path])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.err.contains("is a folder; `lockproof run` takes scenario files: use `lockproof verify \(folder.path)`"), result.err)
    }

    /// A p(99) on 4 operations: `check` warns before anything runs, and the file stays valid.
    func testCheckWarnsOfAPercentileTheIterationsCannotFeed() throws {
        let short = passing + "\n  latency: [\"p(99) < 1s\", \"p(50) < 1s\"]"
        let result = try lockproof(["check", try write(short, "short.yaml", in: try temporaryFolder())])
        XCTAssertEqual(result.status, 0, result.err)
        XCTAssertTrue(
            result.err.contains("warning: 'p(99) < 1s' on latency will be judged on 4 operations (2 virtual users × 2 iterations); a p(99) needs at least 200"),
            result.err)
        XCTAssertFalse(result.err.contains("p(50)"), "4 operations feed a median")
    }

    /// Colour when asked for (a terminal, or CLICOLOR_FORCE as a terminal stands in here); never
    /// with --no-color or NO_COLOR, nor into a pipe. Old code: never any colour.
    func testColourOnATerminalOnlyAndNoColorHonoured() throws {
        let scenario = try write(passing, "p.yaml", in: try temporaryFolder())
        let escape = "\u{1B}["
        let forced = try lockproof(["run", scenario, "--quiet"], environment: ["CLICOLOR_FORCE": "1", "NO_COLOR": ""])
        XCTAssertEqual(forced.status, 0, forced.err)
        XCTAssertTrue(forced.out.contains("verdict: \(escape)32m✓ PASS"), forced.out)
        XCTAssertTrue(forced.out.contains("✓ ok"), forced.out)
        XCTAssertTrue(forced.out.contains("\(escape)32m✓ PASS\(escape)0m\n1 passed"), "the verdict table's row: \(forced.out)")
        let piped = try lockproof(["run", scenario, "--quiet"], environment: ["NO_COLOR": ""])
        XCTAssertFalse(piped.out.contains(escape), piped.out)
        XCTAssertTrue(piped.out.contains("verdict: PASS"), piped.out)
        let noColorVariable = try lockproof(["run", scenario, "--quiet"], environment: ["CLICOLOR_FORCE": "1", "NO_COLOR": "1"])
        XCTAssertFalse(noColorVariable.out.contains(escape), noColorVariable.out)
        let noColorFlag = try lockproof(["run", scenario, "--quiet", "--no-color"], environment: ["CLICOLOR_FORCE": "1", "NO_COLOR": ""])
        XCTAssertFalse(noColorFlag.out.contains(escape), noColorFlag.out)

        let failing = passing.replacingOccurrences(of: "count == 4", with: "count == 5")
        let failed = try lockproof(
            ["run", try write(failing, "f.yaml", in: try temporaryFolder()), "--quiet"], environment: ["CLICOLOR_FORCE": "1", "NO_COLOR": ""])
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.out.contains("\(escape)1;31m✗ FAILED"), failed.out)
    }

    /// `--json`: stdout is one JSON document (old code: "Unknown option '--json'", exit 2).
    func testJSONSummaryOnStdoutForRunAndVerify() throws {
        let folder = try temporaryFolder()
        let reports = folder.appendingPathComponent("reports")
        let scenarios = folder.appendingPathComponent("scenarios")
        try FileManager.default.createDirectory(at: scenarios, withIntermediateDirectories: true)
        let good = try write(passing, "a.yaml", in: scenarios)
        let run = try lockproof(["run", good, "--json", "--report-dir", reports.path])
        XCTAssertEqual(run.status, 0, run.err)
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any], run.out)
        XCTAssertEqual(document["passed"] as? Int, 1)
        XCTAssertEqual(document["report_dir"] as? String, reports.path)
        let first = try XCTUnwrap((document["scenarios"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["scenario"] as? String, "cli-pass")
        XCTAssertEqual(first["status"] as? String, "pass")

        _ = try write(
            passing.replacingOccurrences(of: "cli-pass", with: "cli-fail").replacingOccurrences(of: "count == 4", with: "count == 5"),
            "b.yaml", in: scenarios)
        let verify = try lockproof(["verify", scenarios.path, "--json"])
        XCTAssertEqual(verify.status, 1, verify.err)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(verify.out.utf8)) as? [String: Any], verify.out)
        XCTAssertEqual(summary["passed"] as? Int, 1)
        XCTAssertEqual(summary["failed"] as? Int, 1)
        XCTAssertTrue(summary["report_dir"] is NSNull || summary["report_dir"] == nil)
    }

    /// Two real runs of the same scenario: too few operations to judge speed, so no regression;
    /// then the same scenario failing: the verdict change first, exit 1.
    func testCompareRealRunsPutsAVerdictChangeFirst() throws {
        let folder = try temporaryFolder()
        let scenario = try write(passing, "p.yaml", in: folder)
        let first = folder.appendingPathComponent("first"), second = folder.appendingPathComponent("second")
        XCTAssertEqual(try lockproof(["run", scenario, "--quiet", "--report-dir", first.path]).status, 0)
        XCTAssertEqual(try lockproof(["run", scenario, "--quiet", "--report-dir", second.path]).status, 0)
        let same = try lockproof(["compare", first.path, second.path])
        XCTAssertEqual(same.status, 0, same.out + same.err)
        XCTAssertTrue(same.out.contains("fewer than 20 operations"), same.out)
        XCTAssertTrue(same.out.contains("result: no regression"), same.out)
        XCTAssertEqual(
            try String(contentsOf: second.appendingPathComponent("compare.txt"), encoding: .utf8),
            same.out.replacingOccurrences(of: "written to \(second.path)/compare.txt\n", with: ""))

        let failing = try write(passing.replacingOccurrences(of: "count == 4", with: "count == 5"), "f.yaml", in: folder)
        let third = folder.appendingPathComponent("third")
        XCTAssertEqual(try lockproof(["run", failing, "--quiet", "--report-dir", third.path]).status, 1)
        let worse = try lockproof(["compare", first.path, third.path, "--output", folder.appendingPathComponent("c.txt").path])
        XCTAssertEqual(worse.status, 1, worse.out + worse.err)
        let lines = worse.out.split(separator: "\n").map(String.init)
        let section = try XCTUnwrap(lines.firstIndex(of: "verdict changes:"), worse.out)
        XCTAssertEqual(lines[section + 1], "  ✗ cli-pass: PASS → FAIL")
        XCTAssertLessThan(section, try XCTUnwrap(lines.firstIndex { $0.hasPrefix("scenario ") }), "before the table")
        XCTAssertTrue(worse.out.contains("result: REGRESSION"), worse.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("c.txt").path))
    }

    /// A run report with one repetition: a fall by more than half is a slowdown, 10 % is noise
    /// under the default tolerance of 50 % and a slowdown under --tolerance 5. Fields the comparison does not read
    /// (added by a later report version) change nothing.
    func testCompareOneRepetitionUsesTheTolerance() throws {
        let folder = try temporaryFolder()
        func report(_ name: String, throughput: Double, p99: Double) throws -> String {
            let path = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
            _ = try write(
                """
                {"scenario": "hot", "status": "pass", "throughput_per_second": \(throughput), "schema_version": 2,
                 "operations": {"ok": 1000, "fail": 0, "unknown": 0}, "latency_seconds": {"p50": 0.001, "p99": \(p99)}}
                """, "hot.json", in: path)
            return path.path
        }
        let baseline = try report("a", throughput: 1_651, p99: 0.010)
        let halved = try lockproof(["compare", baseline, try report("b", throughput: 700, p99: 0.010)])
        XCTAssertEqual(halved.status, 1, halved.out + halved.err)
        XCTAssertTrue(halved.out.contains("slower, beyond the noise:\n  hot: ✗ throughput 1651 → 700 ops/s (-57.6%)"), halved.out)
        let noisy = try report("c", throughput: 1_500, p99: 0.011)
        let inside = try lockproof(["compare", baseline, noisy])
        XCTAssertEqual(inside.status, 0, inside.out)
        XCTAssertTrue(inside.out.contains("-9.1%, noise"), inside.out)
        XCTAssertTrue(inside.out.contains("with a single repetition, when the values differ by more than 50 %"), inside.out)
        XCTAssertEqual(try lockproof(["compare", baseline, noisy, "--tolerance", "5"]).status, 1)
        let faster = try lockproof(["compare", baseline, try report("d", throughput: 1_651, p99: 0.002)])
        XCTAssertEqual(faster.status, 0, faster.out)
        XCTAssertTrue(faster.out.contains("faster, beyond the noise:\n  hot: ✓ p99 10.0 → 2.00 ms (-80.0%)"), faster.out)
        // Slower for its p99, faster for its throughput: each figure is marked on its own.
        let mixed = try lockproof(["compare", baseline, try report("e", throughput: 3_000, p99: 0.020)])
        XCTAssertEqual(mixed.status, 1, mixed.out)
        XCTAssertTrue(
            mixed.out.contains("slower, beyond the noise:\n  hot: ✓ throughput 1651 → 3000 ops/s (+81.7%); ✗ p99 10.0 → 20.0 ms (+100.0%)"), mixed.out)
    }

    /// Bench cells with repetitions: overlapping ranges are no change however far the medians
    /// move; ranges apart and more than 10 % is a slowdown; an invariant that broke is a verdict
    /// change. Read from camelCase and snake_case field names alike.
    func testCompareBenchCellsByTheRangesOfTheirRepetitions() throws {
        let folder = try temporaryFolder()
        func bench(_ name: String, held: Bool = true, _ throughputs: [Double], snakeCase: Bool = false) throws -> String {
            let path = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
            let runs = throughputs.map { "{\"throughput\": \($0), \"operations\": 5000, \"\(snakeCase ? "latency_p99_seconds" : "latencyP99")\": 0.01}" }
            _ = try write(
                """
                {"tool_version": "x", "cells": [{"id": "charge-balance/atomic/hot/c16", "\(snakeCase ? "invariant_held" : "invariantHeld")": \(held),
                 "\(snakeCase ? "negative_control" : "negativeControl")": false, "errors": [], "runs": [\(runs.joined(separator: ","))]}]}
                """, "bench.json", in: path)
            return path.path
        }
        let baseline = try bench("a", [828, 1_651, 1_200])
        let overlapping = try lockproof(["compare", baseline, try bench("b", [900, 1_000, 1_100], snakeCase: true)])
        XCTAssertEqual(overlapping.status, 0, overlapping.out + overlapping.err)
        XCTAssertTrue(overlapping.out.contains("1200 [828–1651] → 1000 [900–1100]"), overlapping.out)
        XCTAssertTrue(overlapping.out.contains("noise"), overlapping.out)
        let apart = try lockproof(["compare", baseline, try bench("c", [500, 520, 540])])
        XCTAssertEqual(apart.status, 1, apart.out)
        XCTAssertTrue(apart.out.contains("charge-balance/atomic/hot/c16: ✗ throughput 1200 [828–1651] → 520 [500–540] ops/s"), apart.out)
        let broke = try lockproof(["compare", baseline, try bench("d", held: false, [828, 1_651, 1_200])])
        XCTAssertEqual(broke.status, 1, broke.out)
        XCTAssertTrue(broke.out.contains("verdict changes:\n  ✗ charge-balance/atomic/hot/c16: held → broken"), broke.out)
    }

    /// Bad input exits 2, names the folder, file and field, and writes nothing.
    func testCompareRefusesBadInputNamingFileAndField() throws {
        let folder = try temporaryFolder()
        let good = folder.appendingPathComponent("good"), bad = folder.appendingPathComponent("bad")
        for path in [good, bad] { try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true) }
        _ = try write(
            "{\"scenario\": \"x\", \"status\": \"pass\", \"throughput_per_second\": 1, \"operations\": {\"ok\": 1, \"fail\": 0, \"unknown\": 0}, \"latency_seconds\": {\"p99\": null}}",
            "x.json", in: good)
        _ = try write("{\"scenario\": \"x\", \"throughput_per_second\": 1}", "x.json", in: bad)
        let missing = try lockproof(["compare", good.path, bad.path])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.err.contains("\(bad.path)/x.json: field 'status' is missing"), missing.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.appendingPathComponent("compare.txt").path))

        _ = try write("{\"scenario\": \"x\", \"status\": \"pass\", \"throughput_per_second\": \"fast\"}", "x.json", in: bad)
        let wrongType = try lockproof(["compare", good.path, bad.path])
        XCTAssertEqual(wrongType.status, 2)
        XCTAssertTrue(wrongType.err.contains("field 'throughput_per_second' found 'fast'; expected a number"), wrongType.err)

        let nowhere = folder.appendingPathComponent("nowhere").path
        XCTAssertTrue(try lockproof(["compare", nowhere, good.path]).err.contains("\(nowhere): not a folder of reports"))
        let empty = try temporaryFolder().path
        XCTAssertTrue(try lockproof(["compare", good.path, empty]).err.contains("no run reports"))
        _ = try write("{\"cells\": []}", "bench.json", in: bad)
        let mixed = try lockproof(["compare", good.path, bad.path])
        XCTAssertEqual(mixed.status, 2)
        XCTAssertTrue(mixed.err.contains("compare like with like"), mixed.err)

        // compare.txt is never written into a folder reached through a link.
        let linked = folder.appendingPathComponent("linked")
        try FileManager.default.createSymbolicLink(at: linked, withDestinationURL: good)
        let throughLink = try lockproof(["compare", good.path, linked.path])
        XCTAssertEqual(throughLink.status, 2, throughLink.out + throughLink.err)
        XCTAssertTrue(throughLink.err.contains(linked.path), throughLink.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: good.appendingPathComponent("compare.txt").path))
    }
}
