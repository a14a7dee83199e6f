import Foundation
import XCTest

/// `lockproof verify --target` refuses, before anything is written (exit 2, no report folder), a
/// scenario the target cannot run, naming why.
extension CommandLineTests {
    private var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testVerifyThroughATargetRefusesWhatItCannotRunBeforeWritingAnything() throws {
        let reports = try temporaryFolder().appendingPathComponent("reports")
        let scenarios = ["fault-client-pause-charge-seed.yaml", "process-payment-seed.yaml"].map {
            repository.appendingPathComponent("Scenarios/\($0)").path
        }
        let result = try lockproof(
            ["verify", "--quiet", "--target", repository.appendingPathComponent("targets/shop.yaml").path, "--report-dir", reports.path]
                + scenarios,
            environment: ["SHOP_URL": "http://127.0.0.1:1", "SHOP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("fault client-pause strikes inside LockProof's own process"), result.err)
        XCTAssertTrue(result.err.contains("workload.gateway configures LockProof's simulated payment gateway"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "nothing written")
    }

    func testVerifyThroughATargetNamesAnUnsetVariable() throws {
        let result = try lockproof(
            ["verify", "--quiet", "--target", repository.appendingPathComponent("targets/shop.yaml").path,
             repository.appendingPathComponent("Scenarios/cart-quantity-seed.yaml").path],
            environment: ["SHOP_URL": "", "SHOP_DATABASE_URL": ""])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("the environment variable SHOP_URL is not set"), result.err)
    }
}

/// `target:` in a scenario file against --target, and a target file with errors named by a
/// scenario: exit 2 before anything is written, each problem at its FILE:LINE:COLUMN.
extension CommandLineTests {
    private var checkout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private func scenarioNaming(_ target: String, in folder: URL) throws -> String {
        try write(
            """
            name: names-its-target
            case: charge-balance
            target: \(target)
            workload: {virtual_users: 2, iterations: 1}
            """, "names-its-target.yaml", in: folder)
    }

    func testATargetInTheScenarioAndAnotherOnTheCommandLineAreRefused() throws {
        let folder = try temporaryFolder()
        let serve = checkout.appendingPathComponent("targets/lockproof-serve.yaml").path
        let scenario = try scenarioNaming(serve, in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(
            ["verify", "--quiet", "--target", checkout.appendingPathComponent("targets/shop.yaml").path, "--report-dir", reports.path, scenario],
            environment: ["SHOP_URL": "http://127.0.0.1:1", "SHOP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(
            result.err.contains("\(scenario):3:9: error: target: found '\(serve)' (\(serve)), and --target names \(checkout.path)/targets/shop.yaml; expected the same file, or only one of them"),
            result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "nothing written")
        // `lockproof check` says where the scenario goes.
        let checked = try lockproof(["check", scenario])
        XCTAssertEqual(checked.status, 0, checked.err)
        XCTAssertTrue(checked.out.contains("through target \(serve)"), checked.out)
    }

    func testATargetFileWithErrorsNamedByAScenarioIsReportedAtItsLineAndColumn() throws {
        let folder = try temporaryFolder()
        let broken = try write("name: broken\ninstances: {base_urls: [\"http://x\"]}\nbogus: 1\n", "broken.yaml", in: folder)
        let scenario = try scenarioNaming("broken.yaml", in: folder)
        let reports = folder.appendingPathComponent("reports")
        let result = try lockproof(["verify", "--quiet", "--report-dir", reports.path, scenario])
        XCTAssertEqual(result.status, 2, result.err)
        XCTAssertTrue(result.err.contains("\(broken):3:1: error:"), result.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reports.path), "nothing written")
    }
}
