import Foundation
import LockProofTestSupport
import XCTest

/// `swift test` without PostgreSQL and Redis: the first test that needs them stops the test
/// process at once with one line saying how to start them (before: a `fatalError` and its
/// backtrace). Run here on the test product itself, pointed at ports where nothing listens.
final class TestsWithoutServersTests: XCTestCase {
    func testTheTestProcessStopsWithOneLineSayingHowToStartTheServers() throws {
        #if os(Linux)
            // On Linux the test product is the executable running this test.
            let tests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let result = try launch(
                tests, ["LockProofDriverTests.PostgresDriverTests/testBoundParametersRoundTripHostileText"],
                environment: [
                    "LOCKPROOF_DATABASE_URL": "postgresql://lockproof@127.0.0.1:1/lockproof",
                    "LOCKPROOF_REDIS_URL": "redis://127.0.0.1:1/0", "LOCKPROOF_TEST_DATABASE_URL": "",
                    "LOCKPROOF_CONNECT_TIMEOUT": "2",
                ],
                timeoutSeconds: 120)
            XCTAssertEqual(result.status, 1, result.out + result.err)
            let lines = result.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, result.err)
            XCTAssertTrue(lines.first?.hasPrefix("lockproof tests: PostgreSQL does not answer at postgresql://lockproof@127.0.0.1:1/lockproof") == true, result.err)
            XCTAssertTrue(result.err.contains("Start throwaway servers with `make test` or `scripts/with-services.sh swift test`"), result.err)
            XCTAssertFalse(result.out.contains("passed"), result.out)
        #else
            throw XCTSkip("the test product is an executable of its own on Linux only")
        #endif
    }
}
