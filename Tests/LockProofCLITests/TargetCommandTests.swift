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
