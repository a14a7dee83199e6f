import Foundation
import LockProofTestSupport
import XCTest

/// A short, seeded run of the parsers' fuzz targets (`lockproof-fuzz`, the mutator build) in every
/// `make test`: mutations of every shipped scenario through the scenario and threshold parsers must
/// end in a scenario or bounded validation problems. `make fuzz` runs libFuzzer on them for longer.
final class FuzzSmokeTests: XCTestCase {
    func testMutatedScenariosNeverBreakTheParsersInvariants() throws {
        let binary = try BuiltBinary.require("lockproof-fuzz")
        let scenarios = Repository.root.appendingPathComponent("Scenarios")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--iterations", "400", "--seed", "11", scenarios.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "a mutation crashed a parser: \(text)")
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("400 mutations × 2 targets"), text)
    }
}
