import Foundation
import Yams

// responses and otherwise: the rules that read a response into the history.

extension TargetReader {
    mutating func responseRules(_ node: Node, _ section: String, operation: String?) -> [TargetResponseRule] {
        guard let list = list(node, section) else { return [] }
        if list.isEmpty { problem(node, "\(section): found an empty list; expected rules such as {status: 200, outcome: ok}") }
        var rules: [TargetResponseRule] = []
        for (index, element) in list.enumerated() {
            if let rule = responseRule(element, "\(section)[\(index)]", operation: operation, needsStatus: true) { rules.append(rule) }
        }
        return rules
    }

    mutating func otherwiseRule(_ node: Node, _ field: String) -> TargetResponseRule? {
        guard let rule = responseRule(node, field, operation: nil, needsStatus: false) else { return nil }
        if rule.outcome == .ok {
            problem(node, "\(field): an unexpected response cannot be ok; expected outcome unknown (or fail)")
            return nil
        }
        return rule
    }

    mutating func responseRule(_ node: Node, _ field: String, operation: String?, needsStatus: Bool) -> TargetResponseRule? {
        let known = needsStatus ? ["status", "when", "outcome", "reason", "result"] : ["outcome", "reason"]
        let fields = entries(node, known: known, section: field)
        guard case .mapping = node else { return nil }
        var valid = true
        var statuses: [TargetResponseRule.Status] = []
        if needsStatus {
            if let value = lookup(fields, "status") {
                let elements: [Node]
                if case .sequence(let sequence) = value { elements = Array(sequence) } else { elements = [value] }
                for element in elements {
                    if let status = status(element, "\(field).status") { statuses.append(status) } else { valid = false }
                }
                if elements.isEmpty {
                    problem(value, "\(field).status: found an empty list; expected a status such as 200, 409 or 5xx")
                    valid = false
                }
            } else {
                problem(node, "\(field): missing key 'status' (such as 200, [409, 410] or 5xx)")
                valid = false
            }
        }
        var conditions: [(path: TargetJSONPath, equals: TargetValue)] = []
        if let value = lookup(fields, "when") {
            for entry in entries(value, known: nil, section: "\(field).when") {
                guard let path = TargetJSONPath(entry.name) else {
                    problem(entry.key, "\(field).when: found '\(entry.name.prefix(60))'; expected a JSON path into the response body, such as $.error.code")
                    valid = false
                    continue
                }
                guard case .scalar(let scalar) = entry.value else {
                    problem(entry.value, "\(field).when.\(entry.name): found \(describe(entry.value)); expected a string, a whole number, true or false")
                    valid = false
                    continue
                }
                let expected: TargetValue
                if entry.value.null != nil {
                    expected = .null
                } else if scalar.style == .plain, let number = strictInteger(scalar.string) {
                    expected = .integer(number)
                } else if scalar.style == .plain, let flag = entry.value.bool {
                    expected = .boolean(flag)
                } else {
                    expected = .text(scalar.string)
                }
                conditions.append((path, expected))
            }
        }
        var outcome: HistoryOutcome?
        if let value = lookup(fields, "outcome"), let text = string(value, "\(field).outcome") {
            outcome = HistoryOutcome(rawValue: text)
            if outcome == nil { problem(value, "\(field).outcome: found '\(text.prefix(40))'; expected ok, fail or unknown") }
        } else if lookup(fields, "outcome") == nil {
            problem(node, "\(field): missing key 'outcome' (ok, fail or unknown)")
        }
        var reason: String?
        if let value = lookup(fields, "reason"), let text = string(value, "\(field).reason") {
            if outcome == .ok {
                problem(value, "\(field).reason: an ok response has no reason; expected none (or outcome fail/unknown)")
                valid = false
            } else if Target.knownReasons.contains(text) {
                reason = text
            } else {
                let hint = closest(text, in: Target.knownReasons).map { " (did you mean '\($0)'?)" } ?? ""
                problem(value, "\(field).reason: found '\(text.prefix(60))'\(hint); expected one of \(Target.knownReasons.joined(separator: ", "))")
                valid = false
            }
        } else if outcome == .fail, lookup(fields, "reason") == nil {
            problem(node, "\(field): a fail needs a reason (such as sold_out, conflict, insufficient_balance); expected key 'reason'")
            valid = false
        }
        var result: [String: TargetResponseRule.ResultSource] = [:]
        if let value = lookup(fields, "result") {
            let allowed = operation.map(Target.results(of:)) ?? []
            if outcome != .ok {
                problem(value, "\(field).result: only an ok response gives results; expected none here")
                valid = false
            } else if allowed.isEmpty {
                problem(value, "\(field).result: \(operation.map { "operation \($0)" } ?? "a common rule") records no result; expected none")
                valid = false
            } else {
                for entry in entries(value, known: allowed, section: "\(field).result") {
                    if case .scalar(let scalar) = entry.value, scalar.style == .plain, let number = strictInteger(scalar.string) {
                        result[entry.name] = .constant(number)
                    } else if case .scalar = entry.value, let text = entry.value.string, let path = TargetJSONPath(text) {
                        result[entry.name] = .path(path)
                    } else {
                        problem(entry.value, "\(field).result.\(entry.name): found \(describe(entry.value)); expected a JSON path into the response body (such as $.data.id) or a whole number")
                        valid = false
                    }
                }
            }
        }
        guard valid, let outcome else { return nil }
        return TargetResponseRule(statuses: statuses, when: conditions, outcome: outcome, reason: reason, result: result)
    }

    mutating func status(_ node: Node, _ field: String) -> TargetResponseRule.Status? {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            if let value = strictInteger(scalar.string), (100...599).contains(value) { return .exactly(value) }
            let text = scalar.string.lowercased()
            if text.count == 3, text.hasSuffix("xx"), let digit = text.first?.wholeNumberValue, (1...5).contains(digit) {
                return .statusClass(digit)
            }
        }
        problem(node, "\(field): found \(describeNumberLike(node)); expected an HTTP status (100…599) or a class such as 4xx")
        return nil
    }
}
