import Foundation

/// The report fields `lockproof compare` reads, all in this one place. Each lists the spellings it
/// accepts, the current one first (a missing field is named by it), then the camelCase of bench.json
/// before schema 2; renaming a field of the reports is one line here; fields it does not name are
/// ignored, so added fields change nothing.
enum ComparedField {
    // A run report, NAME.json of `run`/`verify --report-dir`.
    static let scenario = ["scenario"]
    static let status = ["status"]
    static let throughput = ["throughput_per_second"]
    static let latency = ["latency_seconds"]
    static let latencyP99 = ["p99"]
    static let operations = ["operations"]
    static let operationCounts = [["ok"], ["fail"], ["unknown"]]
    // bench.json of `bench --report-dir`.
    static let cells = ["cells"]
    static let cellID = ["id"]
    static let invariantHeld = ["invariant_held", "invariantHeld"]
    static let negativeControl = ["negative_control", "negativeControl"]
    static let cellErrors = ["errors"]
    static let repetitions = ["repetitions", "runs"]
    static let repetitionThroughput = ["throughput_per_second", "throughput"]
    static let repetitionLatencyP99 = ["latency_p99_seconds", "latencyP99"]
    static let repetitionOperations = ["operations"]
}

/// Bad input to `compare`: names the file and the field.
public struct ComparisonInputError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One JSON object of a report, read by field names from `ComparedField`.
struct ReportObject {
    let fields: [String: Any]
    /// `folder/file` or `folder/file: cells[3]`, for messages.
    let place: String

    func value(_ names: [String]) throws -> Any {
        guard let found = names.lazy.compactMap({ fields[$0] }).first else {
            throw ComparisonInputError("\(place): field '\(names[0])' is missing")
        }
        return found
    }
    func string(_ names: [String]) throws -> String {
        guard let text = try value(names) as? String else { throw wrongType(names, "a string") }
        return text
    }
    func bool(_ names: [String]) throws -> Bool {
        guard let flag = try value(names) as? Bool else { throw wrongType(names, "true or false") }
        return flag
    }
    /// A number, or nil when the field is null (a latency of a run that measured none).
    func number(_ names: [String]) throws -> Double? {
        let found = try value(names)
        if found is NSNull { return nil }
        guard let number = found as? NSNumber else { throw wrongType(names, "a number") }
        return number.doubleValue
    }
    func object(_ names: [String]) throws -> ReportObject {
        guard let inner = try value(names) as? [String: Any] else { throw wrongType(names, "an object") }
        return ReportObject(fields: inner, place: "\(place): \(names[0])")
    }
    func objects(_ names: [String]) throws -> [ReportObject] {
        guard let list = try value(names) as? [Any] else { throw wrongType(names, "a list") }
        return try list.enumerated().map { index, element in
            guard let inner = element as? [String: Any] else {
                throw ComparisonInputError("\(place): \(names[0])[\(index)] is not an object")
            }
            return ReportObject(fields: inner, place: "\(place): \(names[0])[\(index)]")
        }
    }
    private func wrongType(_ names: [String], _ expected: String) -> ComparisonInputError {
        let found = names.lazy.compactMap({ fields[$0] }).first.map { "\($0)".prefix(40) } ?? ""
        return ComparisonInputError("\(place): field '\(names[0])' found '\(found)'; expected \(expected)")
    }
}

/// What compare knows of one scenario run or one bench cell.
public struct ComparedEntry: Sendable {
    public let name: String
    /// PASS, FAIL, ERROR for a run; held, broken, caught, not caught, error for a bench cell.
    public let verdict: String
    public let verdictGood: Bool
    /// One value per repetition (one for a run report).
    public let throughput: [Double]
    public let latencyP99: [Double]
    /// Operations of the smallest repetition: the samples each value stands on.
    public let operations: Int
}

/// The reports of one folder: a run's NAME.json files, or a bench's bench.json.
public struct ReportSet: Sendable {
    public enum Kind: String, Sendable { case run = "run reports", bench = "bench cells" }
    public let folder: String
    public let kind: Kind
    public let entries: [String: ComparedEntry]

    /// Reads `folder`; anything it cannot read is a ComparisonInputError naming the file and field.
    public static func load(_ folder: String) throws -> ReportSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ComparisonInputError("\(folder): not a folder of reports")
        }
        let bench = (folder as NSString).appendingPathComponent("bench.json")
        if FileManager.default.fileExists(atPath: bench) {
            return ReportSet(folder: folder, kind: .bench, entries: try benchEntries(try readObject(bench)))
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var entries: [String: ComparedEntry] = [:]
        for name in names {
            let report = try readObject((folder as NSString).appendingPathComponent(name))
            // Other JSON in the folder (not a scenario's report) is none of compare's business.
            guard report.fields[ComparedField.scenario[0]] != nil else { continue }
            let entry = try runEntry(report)
            entries[entry.name] = entry
        }
        guard !entries.isEmpty else {
            throw ComparisonInputError("\(folder): no run reports (NAME.json with a 'scenario' field) and no bench.json")
        }
        return ReportSet(folder: folder, kind: .run, entries: entries)
    }

    static func readObject(_ path: String) throws -> ReportObject {
        guard let data = FileManager.default.contents(atPath: path) else { throw ComparisonInputError("\(path): cannot be read") }
        guard let fields = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ComparisonInputError("\(path): not a JSON object")
        }
        return ReportObject(fields: fields, place: path)
    }

    static func runEntry(_ report: ReportObject) throws -> ComparedEntry {
        let status = try report.string(ComparedField.status)
        guard ["pass", "fail", "error"].contains(status) else {
            throw ComparisonInputError("\(report.place): field 'status' found '\(status.prefix(40))'; expected pass, fail or error")
        }
        let throughput = try report.number(ComparedField.throughput)
        let operations = try report.object(ComparedField.operations)
        let count = try ComparedField.operationCounts.reduce(0) { $0 + Int(try operations.number($1) ?? 0) }
        let latency = try report.object(ComparedField.latency)
        // A run that completed no operation (an aborted one) measured no latency: its object is empty.
        let measuredNone = count == 0 && latency.fields.isEmpty
        let p99 = measuredNone ? nil : try latency.number(ComparedField.latencyP99)
        return ComparedEntry(
            name: try report.string(ComparedField.scenario), verdict: status.uppercased(), verdictGood: status == "pass",
            throughput: throughput.map { [$0] } ?? [], latencyP99: p99.map { [$0] } ?? [], operations: count)
    }

    static func benchEntries(_ document: ReportObject) throws -> [String: ComparedEntry] {
        var entries: [String: ComparedEntry] = [:]
        for cell in try document.objects(ComparedField.cells) {
            let held = try cell.bool(ComparedField.invariantHeld)
            let control = try cell.bool(ComparedField.negativeControl)
            let failed = !((try cell.value(ComparedField.cellErrors) as? [Any]) ?? []).isEmpty
            let repetitions = try cell.objects(ComparedField.repetitions)
            let verdict = failed ? "error" : control ? (held ? "not caught" : "caught") : (held ? "held" : "broken")
            let name = try cell.string(ComparedField.cellID)
            entries[name] = ComparedEntry(
                name: name, verdict: verdict, verdictGood: !failed && held != control,
                throughput: try repetitions.compactMap { try $0.number(ComparedField.repetitionThroughput) },
                latencyP99: try repetitions.compactMap { try $0.number(ComparedField.repetitionLatencyP99) },
                operations: try repetitions.map { Int(try $0.number(ComparedField.repetitionOperations) ?? 0) }.min() ?? 0)
        }
        return entries
    }
}
