import Foundation
import LockProofAPI
import LockProofScenario

/// The two parsers that read untrusted text: the scenario parser (a whole YAML file) and the
/// threshold expression parser (a metric target and `AGG OP NUMBER`, reached through a scenario
/// like every user input). Each input must end in a scenario or in validation problems, never in
/// a crash, a hang or an unbounded report; a broken invariant stops the process (a finding).
enum FuzzTarget: String, CaseIterable {
    case scenario
    case threshold
    /// The HTTP API's request reader (LockProofAPI): its corpus is api/fuzz-corpus/, requests
    /// written as `METHOD PATH`, header lines, a blank line, the body.
    case request

    /// What a mutator run exercises when no --target is given: the targets whose corpus is Scenarios/.
    static let scenarioCorpusTargets: [FuzzTarget] = [.scenario, .threshold]

    /// Runs one input.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .scenario:
            check(String(decoding: bytes, as: UTF8.self), inputBytes: bytes.count)
        case .threshold:
            // The first line is the metric target, the rest the expression; both travel as YAML
            // double-quoted strings, escaped so that the input cannot change the document's shape.
            let text = String(decoding: bytes, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let target = parts.count > 1 ? String(parts[0]) : "latency"
            let expression = String(parts.last ?? "")
            let yaml = """
                name: fuzz
                case: charge-balance
                strategy: seed
                workload: {virtual_users: 2, iterations: 2}
                thresholds:
                  \(yamlQuoted(target)): [\(yamlQuoted(expression))]
                """
            check(yaml, inputBytes: bytes.count)
        case .request:
            checkRequest(bytes)
        }
    }

    /// Every input ends in a typed request or a bounded problem document with a status of the
    /// reader's set; a body the JSON reader accepts writes back to the same value.
    private func checkRequest(_ bytes: [UInt8]) {
        let raw = Self.rawRequest(bytes)
        if let value = try? JSONReader.parse(raw.body) {
            let written = JSONWriter.write(value)
            invariant((try? JSONReader.parse(Array(written.utf8))) == value, "JSON did not survive a write and a read: \(written.prefix(200))")
        }
        do throws(APIProblem) {
            let request = try APIRouter.read(raw)
            let method = raw.method == "HEAD" ? "GET" : raw.method
            invariant(request.route.method == method, "\(raw.method) \(raw.path.prefix(80)) read as \(request.route.rawValue)")
            invariant(raw.body.count <= APILimits.maximumBodyBytes, "an oversized body was accepted")
        } catch {
            invariant([400, 404, 405, 413, 414, 415, 422].contains(error.status), "status \(error.status) from the reader")
            invariant(error.outcome == .notApplied, "a refused request with outcome \(error.outcome)")
            let document = error.json(instance: raw.path)
            invariant(document.utf8.count <= 16 * 1024, "a problem document of \(document.utf8.count) bytes")
            guard case .object(let members)? = try? JSONReader.parse(Array(document.utf8)) else {
                return invariant(false, "a problem document that is not a JSON object: \(document.prefix(200))")
            }
            invariant(members.contains { $0.0 == "status" && $0.1 == .int(error.status) }, "a problem without its status")
            invariant(error.status != 422 || !error.errors.isEmpty, "a 422 naming no field")
        }
    }

    /// `METHOD PATH`, then `Name: value` lines up to a blank line, then the body (bytes as they are).
    static func rawRequest(_ bytes: [UInt8]) -> APIRawRequest {
        var lines: [[UInt8]] = []
        var index = 0
        var start = 0
        var bodyStart = bytes.count
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                let line = Array(bytes[start..<index])
                if line.isEmpty && !lines.isEmpty {
                    bodyStart = index + 1
                    break
                }
                lines.append(line)
                start = index + 1
            }
            index += 1
        }
        if index == bytes.count && start < bytes.count { lines.append(Array(bytes[start...])) }
        let requestLine = String(decoding: lines.first ?? [], as: UTF8.self).split(separator: " ", maxSplits: 1)
        var raw = APIRawRequest(
            method: requestLine.first.map(String.init) ?? "", path: requestLine.count > 1 ? String(requestLine[1]) : "",
            body: bodyStart < bytes.count ? Array(bytes[bodyStart...]) : [])
        for line in lines.dropFirst() {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let value = String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            switch text[..<colon].lowercased() {
            case "content-type": raw.contentType = value
            case "idempotency-key": raw.idempotencyKey = value
            default: break
            }
        }
        return raw
    }

    private func check(_ text: String, inputBytes: Int) {
        do {
            _ = try ScenarioParser.parse(text, file: "fuzz.yaml")
        } catch let error as ScenarioValidationError {
            invariant(!error.problems.isEmpty, "a validation error without a problem")
            invariant(
                error.problems.count <= ScenarioParser.maximumReportedProblems + 1,
                "\(error.problems.count) problems reported, more than the cap")
            for problem in error.problems {
                invariant(problem.line >= 1 && problem.column >= 1, "a problem at \(problem.line):\(problem.column)")
                invariant(problem.message.utf8.count <= 2_000, "a problem message of \(problem.message.utf8.count) bytes")
            }
        } catch {
            invariant(false, "the parser threw \(type(of: error)), not a validation error: \(error)")
        }
    }
}

/// A YAML double-quoted scalar holding `text` exactly.
func yamlQuoted(_ text: String) -> String {
    var quoted = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0xFEFF
                || scalar.value == 0x2028 || scalar.value == 0x2029
            {
                quoted += String(format: "\\u%04X", scalar.value)
            } else {
                quoted.unicodeScalars.append(scalar)
            }
        }
    }
    return quoted + "\""
}

func invariant(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("lockproof-fuzz: invariant broken: \(message())\n".utf8))
        abort()
    }
}
