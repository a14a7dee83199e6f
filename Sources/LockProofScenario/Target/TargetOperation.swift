import Foundation
import LockProofCommerce

// A target's operations: the request each sends and how its response reads into the history.

/// A header sent with a request: its value is a template.
public struct TargetHeader: Sendable, Equatable {
    public let name: String
    public let value: TargetTemplate
}

/// One operation as a request and the mapping of its response to the history.
public struct TargetOperation: Sendable, Equatable {
    public let name: String
    public let method: String
    public let path: TargetTemplate
    public let headers: [TargetHeader]
    /// nil: no body.
    public let body: TargetBody?
    /// The operation's own rules, then the target's common ones: the first that matches decides.
    public let responses: [TargetResponseRule]
    /// What a response that no rule matches means.
    public let otherwise: TargetResponseRule

    /// The request for `arguments` (and, for `create`, its items as product and quantity).
    public func request(
        arguments: [String: TargetValue], items: [(product: Int, quantity: Int)] = [], commonHeaders: [TargetHeader] = []
    ) -> TargetRequest {
        var headers: [(String, String)] = []
        for header in commonHeaders + self.headers {
            guard let value = header.value.render(arguments) else { continue }
            headers.removeAll { $0.0.lowercased() == header.name.lowercased() }
            headers.append((header.name, value.text))
        }
        let bodyData = body.flatMap { template -> Data? in
            guard let json = template.render(arguments, items: items) else { return nil }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try? encoder.encode(json)
        }
        let path = TargetValue.pathOf(self.path, arguments) ?? ""
        return TargetRequest(method: method, path: path, headers: headers, body: bodyData)
    }

    /// The history's view of a response: the first matching rule's outcome, reason and results.
    /// A body that is not JSON matches only rules without `when`; a result whose path is missing
    /// or not a whole number makes the response `unknown` (`unexpected_response`): the client
    /// cannot tell what happened.
    public func interpret(status: Int, body: Data) -> TargetInterpretation {
        let json = body.isEmpty ? nil : try? JSONDecoder().decode(TargetJSON.self, from: body)
        let rule = responses.first { $0.matches(status: status, json: json) } ?? otherwise
        var result: [String: Int] = [:]
        for (name, source) in rule.result {
            switch source {
            case .constant(let value): result[name] = value
            case .path(let path):
                guard case .integer(let value)? = path.evaluate(json) else {
                    return TargetInterpretation(
                        outcome: .unknown, reason: "unexpected_response", result: nil,
                        note: "status \(status): result \(name) expected a whole number at \(path.text)")
                }
                result[name] = value
            }
        }
        return TargetInterpretation(
            outcome: rule.outcome, reason: rule.outcome == .ok ? nil : rule.reason ?? "unexpected_response",
            result: rule.outcome == .ok ? result : nil, note: nil)
    }
}

/// A request ready to send (relative to a base URL).
public struct TargetRequest: Sendable, Equatable {
    public let method: String
    public let path: String
    public let headers: [(String, String)]
    public let body: Data?

    public static func == (a: TargetRequest, b: TargetRequest) -> Bool {
        a.method == b.method && a.path == b.path && a.body == b.body
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }
}

public struct TargetInterpretation: Sendable, Equatable {
    public let outcome: HistoryOutcome
    public let reason: String?
    public let result: [String: Int]?
    /// Why a response that looked ok became unknown.
    public let note: String?
}

/// `status: 409`, `status: 4xx` or a list of them; `when` on JSON paths of the body.
public struct TargetResponseRule: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        case exactly(Int)
        /// 4 for `4xx`.
        case statusClass(Int)

        func matches(_ status: Int) -> Bool {
            switch self {
            case .exactly(let value): return status == value
            case .statusClass(let hundreds): return status / 100 == hundreds
            }
        }
    }

    /// Empty: any status (only `otherwise`).
    public let statuses: [Status]
    public let when: [(path: TargetJSONPath, equals: TargetValue)]
    public let outcome: HistoryOutcome
    public let reason: String?
    public let result: [String: ResultSource]

    public enum ResultSource: Sendable, Equatable {
        case path(TargetJSONPath)
        case constant(Int)
    }

    func matches(status: Int, json: TargetJSON?) -> Bool {
        guard statuses.isEmpty || statuses.contains(where: { $0.matches(status) }) else { return false }
        return when.allSatisfy { condition in
            guard let found = condition.path.evaluate(json) else { return false }
            return found == condition.equals.json
        }
    }

    public static func == (a: TargetResponseRule, b: TargetResponseRule) -> Bool {
        a.statuses == b.statuses && a.outcome == b.outcome && a.reason == b.reason && a.result == b.result
            && a.when.map(\.path) == b.when.map(\.path) && a.when.map(\.equals) == b.when.map(\.equals)
    }
}
