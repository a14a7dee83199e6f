import Foundation

/// One sample line of a Prometheus text exposition.
public struct Sample: Equatable, Sendable {
    public let name: String
    public let labels: [String: String]
    public let value: Double
}

/// A parsed /metrics body: samples plus the `# TYPE` of each family.
public struct Exposition: Sendable {
    public let samples: [Sample]
    public let types: [String: String]

    public init(_ text: String) throws {
        var samples: [Sample] = []
        var types: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            samples.append(try Self.parseSample(String(line)))
        }
        self.samples = samples
        self.types = types
    }

    /// The value of the one sample with exactly these labels, nil when there is none.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { $0.name == name && $0.labels == labels }
        return matching.count == 1 ? matching[0].value : nil
    }

    public func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// Family names that have at least one sample (histogram suffixes folded into the family).
    public var familyNames: Set<String> {
        Set(
            samples.map { sample in
                for suffix in ["_bucket", "_sum", "_count"] where sample.name.hasSuffix(suffix) {
                    let family = String(sample.name.dropLast(suffix.count))
                    if types[family] == "histogram" { return family }
                }
                return sample.name
            })
    }

    private static func parseSample(_ line: String) throws -> Sample {
        guard let valueStart = line.lastIndex(of: " ") else { throw ParseError(line: line) }
        guard let value = Double(line[line.index(after: valueStart)...]) else { throw ParseError(line: line) }
        let series = line[..<valueStart]
        guard let open = series.firstIndex(of: "{") else {
            return Sample(name: String(series), labels: [:], value: value)
        }
        guard series.last == "}" else { throw ParseError(line: line) }
        var labels: [String: String] = [:]
        var rest = series[series.index(after: open)..<series.index(before: series.endIndex)]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)] == "\"" else {
                throw ParseError(line: line)
            }
            let key = String(rest[..<equals])
            var index = rest.index(equals, offsetBy: 2)
            var labelValue = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\" { index = rest.index(after: index) }
                labelValue.append(rest[index])
                index = rest.index(after: index)
            }
            guard index < rest.endIndex else { throw ParseError(line: line) }
            labels[key] = labelValue
            rest = rest[rest.index(after: index)...]
            if rest.hasPrefix(",") { rest = rest.dropFirst() }
        }
        return Sample(name: String(series[..<open]), labels: labels, value: value)
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let line: String
        public var description: String { "not a sample line: \(line)" }
    }
}
