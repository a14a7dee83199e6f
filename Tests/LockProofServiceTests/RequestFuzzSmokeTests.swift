import Foundation
import XCTest

/// A short, seeded run of the API request reader's fuzz target (`lockproof-fuzz --target request`,
/// the mutator build) in every `make test`: mutations of api/fuzz-corpus/ must end in a request or
/// a bounded problem document, and every JSON body the reader accepts must survive a write and a
/// read. `make fuzz` runs libFuzzer on it for longer.
final class RequestFuzzSmokeTests: XCTestCase {
    func testMutatedRequestsNeverBreakTheReadersInvariants() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("lockproof-fuzz")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("lockproof-fuzz was not built next to the tests (\(binary.path))")
        }
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("api/fuzz-corpus")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--iterations", "8000", "--seed", "17", "--target", "request", corpus.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "a mutation crashed the request reader: \(text)")
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("8000 mutations × 1 targets from 9 corpus files"), text)
    }
}
