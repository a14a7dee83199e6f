import Foundation
import Yams

// operations: each operation's request (method, path, headers, body) and its templates.

extension TargetReader {
    mutating func operation(_ name: String, _ node: Node, common: [TargetResponseRule], otherwise: TargetResponseRule) -> TargetOperation? {
        let section = "operations.\(name)"
        let fields = entries(node, known: ["request", "responses", "otherwise"], section: section)
        guard case .mapping = node else { return nil }
        let arguments = Target.arguments(of: name)
        var method: String?
        var path: TargetTemplate?
        var headers: [TargetHeader] = []
        var body: TargetBody?
        if let requestNode = lookup(fields, "request") {
            let request = entries(requestNode, known: ["method", "path", "headers", "body"], section: "\(section).request")
            if let value = lookup(request, "method"), let text = string(value, "\(section).request.method") {
                if Self.methods.contains(text) {
                    method = text
                } else {
                    problem(value, "\(section).request.method: found '\(text.prefix(40))'; expected one of \(Self.methods.joined(separator: ", "))")
                }
            } else if case .mapping = requestNode {
                problem(requestNode, "\(section).request: missing key 'method' (\(Self.methods.joined(separator: ", ")))")
            }
            if let value = lookup(request, "path"), let text = string(value, "\(section).request.path") {
                if !text.hasPrefix("/") || text.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) {
                    problem(value, "\(section).request.path: found '\(text.prefix(80))'; expected a path starting with '/', without spaces, query or fragment, such as /orders/{order}/payment")
                } else if let template = template(value, text, "\(section).request.path", arguments: arguments) {
                    if let optional = template.arguments.first(where: { Target.optionalArguments.contains($0) }) {
                        problem(value, "\(section).request.path: {\(optional)} is not always there (only with idempotency keys); put it in a header or the body")
                    } else {
                        path = template
                    }
                }
            } else if case .mapping = requestNode {
                problem(requestNode, "\(section).request: missing key 'path' (such as /orders/{order}/payment)")
            }
            if let value = lookup(request, "headers") { headers = headerList(value, "\(section).request.headers", arguments: arguments) }
            if let value = lookup(request, "body") {
                body = self.body(value, "\(section).request.body", arguments: arguments, allowEach: name == "create", inEach: false)
            }
            if name == "create", let body, !body.containsEachItem {
                problem(lookup(request, "body"), "\(section).request.body: the order's items are sent nowhere; expected a list written {$each_item: {…: \"{item.product}\", …: \"{item.quantity}\"}}")
            } else if name == "create", body == nil {
                problem(requestNode, "\(section).request: missing key 'body' (create sends the user and the order's items, {$each_item: …})")
            }
        } else {
            problem(node, "\(section): missing key 'request' (method, path, headers, body)")
        }
        var rules: [TargetResponseRule] = []
        if let value = lookup(fields, "responses") {
            rules = responseRules(value, "\(section).responses", operation: name)
            if name == "create", !rules.contains(where: { $0.outcome == .ok && $0.result["order"] != nil }) {
                problem(value, "\(section).responses: the created order's id is needed by later operations; expected an ok response with result: {order: $.path.to.id}")
            }
            // Only when every rule was read: a rule dropped for its own problem may have been the ok one.
            if !rules.contains(where: { $0.outcome == .ok }), case .sequence(let written) = value, written.count == rules.count {
                problem(value, "\(section).responses: no response is ok; expected at least one rule with outcome: ok")
            }
        } else {
            problem(node, "\(section): missing key 'responses' (which statuses are ok, which fail with which reason)")
        }
        var ownOtherwise = otherwise
        if let value = lookup(fields, "otherwise") { ownOtherwise = otherwiseRule(value, "\(section).otherwise") ?? otherwise }
        guard let method, let path else { return nil }
        return TargetOperation(
            name: name, method: method, path: path, headers: headers, body: body, responses: rules + common, otherwise: ownOtherwise)
    }

    mutating func headerList(_ node: Node, _ section: String, arguments: [String]) -> [TargetHeader] {
        var headers: [TargetHeader] = []
        for entry in entries(node, known: nil, section: section) {
            let field = "\(section).\(entry.name)"
            guard entry.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }) else {
                problem(entry.key, "\(section): found the header name '\(entry.name.prefix(60))'; expected letters, digits, '-' or '_'")
                continue
            }
            guard case .scalar = entry.value, let text = entry.value.string else {
                problem(entry.value, "\(field): found \(describe(entry.value)); expected a string")
                continue
            }
            guard !text.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                problem(entry.value, "\(field): a header value cannot hold a line break")
                continue
            }
            if let value = template(entry.value, text, field, arguments: arguments) { headers.append(TargetHeader(name: entry.name, value: value)) }
        }
        return headers
    }

    /// `{name}` placeholders, each an argument of the operation; `{{`/`}}` literal braces.
    mutating func template(_ node: Node, _ text: String, _ field: String, arguments: [String]) -> TargetTemplate? {
        var parts: [TargetTemplate.Part] = []
        var literal = ""
        var rest = Substring(text)
        while let c = rest.first {
            if rest.hasPrefix("{{") || rest.hasPrefix("}}") {
                literal.append(c)
                rest = rest.dropFirst(2)
            } else if c == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    problem(node, "\(field): '{' is not closed; expected {argument} (one of \(arguments.joined(separator: ", "))) or {{ for a literal brace")
                    return nil
                }
                let name = String(rest[rest.index(after: rest.startIndex)..<close])
                guard arguments.contains(name) else {
                    let hint = closest(name, in: arguments).map { " (did you mean '\($0)'?)" } ?? ""
                    problem(node, "\(field): found {\(name.prefix(40))}\(hint); expected one of the operation's arguments: \(arguments.map { "{\($0)}" }.joined(separator: ", "))")
                    return nil
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.argument(name))
                rest = rest[rest.index(after: close)...]
            } else if c == "}" {
                problem(node, "\(field): a lone '}'; expected }} for a literal brace")
                return nil
            } else {
                literal.append(c)
                rest = rest.dropFirst()
            }
        }
        if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
        return TargetTemplate(parts: parts, text: text)
    }

    mutating func body(_ node: Node, _ field: String, arguments: [String], allowEach: Bool, inEach: Bool) -> TargetBody? {
        switch node {
        case .scalar(let scalar):
            if node.null != nil { return .constant(.null) }
            if scalar.style == .plain {
                if let value = strictInteger(scalar.string) { return .constant(.integer(value)) }
                if let value = node.bool { return .constant(.boolean(value)) }
                if strictDecimal(scalar.string) != nil {
                    problem(node, "\(field): found \(describe(node)); expected a whole number, a string, true/false or a template (amounts are whole numbers)")
                    return nil
                }
            }
            guard let template = template(node, scalar.string, field, arguments: arguments) else { return nil }
            if template.arguments.isEmpty { return .constant(.text(scalar.string.replacingOccurrences(of: "{{", with: "{").replacingOccurrences(of: "}}", with: "}"))) }
            return .template(template)
        case .sequence(let sequence):
            var elements: [TargetBody] = []
            for (index, element) in sequence.enumerated() {
                if let value = body(element, "\(field)[\(index)]", arguments: arguments, allowEach: allowEach, inEach: inEach) { elements.append(value) }
            }
            return elements.count == sequence.count ? .list(elements) : nil
        case .mapping(let mapping):
            if mapping.contains(where: { $0.key.string == "$each_item" }) {
                guard allowEach, !inEach else {
                    problem(node, "\(field): $each_item is for the order's items, in create's body only (and not inside another)")
                    return nil
                }
                guard mapping.count == 1, let element = mapping.first?.value else {
                    problem(node, "\(field): $each_item stands alone in its mapping; expected {$each_item: {…}}")
                    return nil
                }
                let scoped = arguments + ["item.product", "item.quantity"]
                guard let value = body(element, "\(field).$each_item", arguments: scoped, allowEach: false, inEach: true) else { return nil }
                return .eachItem(value)
            }
            var fields: [TargetBody.Field] = []
            var complete = true
            for entry in entries(node, known: nil, section: field) {
                if let value = body(entry.value, "\(field).\(entry.name)", arguments: arguments, allowEach: allowEach, inEach: inEach) {
                    fields.append(TargetBody.Field(name: entry.name, value: value))
                } else {
                    complete = false
                }
            }
            return complete && fields.count == mapping.count ? .object(fields) : nil
        case .alias:
            problem(node, "\(field): found an alias; expected the value written out")
            return nil
        }
    }
}

extension TargetBody {
    var containsEachItem: Bool {
        switch self {
        case .eachItem: return true
        case .object(let fields): return fields.contains { $0.value.containsEachItem }
        case .list(let elements): return elements.contains { $0.containsEachItem }
        case .template, .constant: return false
        }
    }
}
