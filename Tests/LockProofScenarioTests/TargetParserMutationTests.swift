import Foundation
import LockProofScenario
import XCTest

/// The target parser on damaged files: every mutation of targets/shop.yaml either parses or is
/// refused with positioned problems; none crashes or hangs (a seeded mutator, like the scenario
/// parser's fuzz smoke run).
final class TargetParserMutationTests: XCTestCase {
    func testMutatedTargetsAreParsedOrRefusedNeverCrash() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("targets/shop.yaml").path
        let original = Array(try String(contentsOfFile: path, encoding: .utf8).utf8)
        var generator = SplitMix64(seed: 18)
        let fragments: [[UInt8]] = ["{", "}", "{{", "[", "]", ":", "::", "'", "\"", "$", "$.", "$each_item", "- ", "\n", "  ", "5xx", "${", "%", "\u{0}", "é", "-1", "99999999999999999999"].map { Array($0.utf8) }
        var refused = 0
        var parsed = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...12, using: &generator)))
                case 1: bytes.insert(contentsOf: fragments.randomElement(using: &generator)!, at: at)
                default: bytes[at] = UInt8.random(in: 32...126, using: &generator)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                _ = try TargetParser.parse(text, file: "m.yaml")
                parsed += 1
            } catch let error as ScenarioValidationError {
                XCTAssertFalse(error.problems.isEmpty)
                XCTAssertTrue(error.problems.allSatisfy { $0.line >= 1 && $0.column >= 1 && !$0.message.isEmpty })
                refused += 1
            }
        }
        XCTAssertEqual(parsed + refused, 400)
        XCTAssertGreaterThan(refused, 100, "the mutations should break most files")
    }
}

/// A small deterministic generator, so a failure replays.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
