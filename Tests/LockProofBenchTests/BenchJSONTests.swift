import Foundation
import LockProofScenario
import XCTest

@testable import LockProofBench

/// bench.json follows docs/schemas/bench.schema.json: every key the report writes is in the
/// schema and every required one is written (a rename on either side fails here), with types.
final class BenchJSONTests: XCTestCase {
    private func schema() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/schemas/bench.schema.json")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The problems of `value` against `schema` (the subset of JSON Schema the file uses:
    /// type, const, enum, properties, required, additionalProperties, items, oneOf).
    private func problems(_ value: Any, _ schema: [String: Any], at path: String) -> [String] {
        if let choices = schema["oneOf"] as? [[String: Any]] {
            let each = choices.map { problems(value, $0, at: path) }
            return each.contains { $0.isEmpty } ? [] : ["\(path): matches no choice: \(each.flatMap { $0 })"]
        }
        if let constant = schema["const"], "\(constant)" != "\(value)" { return ["\(path): \(value) is not \(constant)"] }
        if let options = schema["enum"] as? [String], !options.contains("\(value)") { return ["\(path): \(value) not in \(options)"] }
        if let types = (schema["type"] as? [String]) ?? (schema["type"] as? String).map({ [$0] }) {
            let kind: String
            switch value {
            case is NSNull: kind = "null"
            case let number as NSNumber where String(cString: number.objCType) == "c": kind = "boolean"
            case let number as NSNumber: kind = number.doubleValue == number.doubleValue.rounded() ? "integer" : "number"
            case is String: kind = "string"
            case is [Any]: kind = "array"
            case is [String: Any]: kind = "object"
            default: kind = "unknown"
            }
            if !types.contains(kind) && !(kind == "integer" && types.contains("number")) {
                return ["\(path): a \(kind), expected \(types)"]
            }
        }
        var found: [String] = []
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for name in schema["required"] as? [String] ?? [] where object[name] == nil { found.append("\(path).\(name): missing") }
            for (name, inner) in object {
                if let property = properties[name] {
                    found += problems(inner, property, at: "\(path).\(name)")
                } else if let additional = schema["additionalProperties"] as? [String: Any] {
                    found += problems(inner, additional, at: "\(path).\(name)")
                } else if schema["additionalProperties"] as? Bool == false {
                    found.append("\(path).\(name): not in the schema")
                }
            }
        }
        if let list = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (index, inner) in list.enumerated() { found += problems(inner, items, at: "\(path)[\(index)]") }
        }
        return found
    }

    func testBenchJSONFollowsItsSchema() throws {
        var results = DecisionTableTests.results([
            DecisionTableTests.cell("optimistic-retry", throughputs: [3000, 3100], failures: ["retry_exhausted": 67]),
            DecisionTableTests.cell("pessimistic", throughputs: [1000, 1050]),
        ], claims: [ClaimVerdict(number: 7, claim: "c", verdict: .notMeasured, evidence: "e", measuredBy: ["experiment oversell"])])
        results.endedAt = "2026-12-04T18:01:00Z"
        var machine = MachineInfo.local()
        machine.postgresqlVersion = "15.8"
        results.machine = machine
        results.redisLockCosts = [
            RedisLockCost(clients: 1, lockProofPairsPerSecond: 10, redisBenchmarkAcquire: 30, redisBenchmarkRelease: 30)
        ]
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: BenchReport.json(results)) as? [String: Any])
        XCTAssertEqual(problems(document, try schema(), at: "bench.json"), [])

        // The names a reader and `compare` rely on, with their units.
        XCTAssertEqual(document["schema_version"] as? Int, 2)
        XCTAssertEqual(document["unmeasured_claims"] as? [Int], [7])
        let cells = try XCTUnwrap(document["cells"] as? [[String: Any]])
        let optimistic = try XCTUnwrap(cells.first { $0["strategy"] as? String == "optimistic-retry" })
        XCTAssertEqual(optimistic["failed_operations"] as? Int, 67)
        XCTAssertTrue(optimistic["rank"] is NSNull, "not ranked")
        XCTAssertEqual(optimistic["not_ranked_because"] as? String, "67 failed operations (retry_exhausted 67)")
        let repetition = try XCTUnwrap((optimistic["repetitions"] as? [[String: Any]])?.first)
        XCTAssertEqual(repetition["latency_p99_seconds"] as? Double, 0.010)
        XCTAssertEqual(repetition["throughput_per_second"] as? Double, 3000)

        // A key the schema does not know is caught (the checker is not vacuous).
        var renamed = document
        renamed["latencyP99"] = 1
        XCTAssertEqual(problems(renamed, try schema(), at: "bench.json"), ["bench.json.latencyP99: not in the schema"])
    }
}
