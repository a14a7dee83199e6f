import Foundation
import Yams

/// Reads and validates target files (`targets/NAME.yaml`) before anything runs. Problems are
/// reported like a scenario file's: `FILE:LINE:COLUMN: error: FIELD: found …; expected …`, every
/// problem of the file (up to `ScenarioParser.maximumReportedProblems`), never the file's text.
public enum TargetParser {
    public static func load(path: String) throws -> Target {
        func refuse(_ message: String) -> ScenarioValidationError {
            ScenarioValidationError(problems: [ScenarioProblem(file: path, line: 1, column: 1, message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: path)
        else { throw refuse("cannot read the target file (does it exist?)") }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: ScenarioParser.maximumFileBytes + 1)) ?? Data()
        guard data.count <= ScenarioParser.maximumFileBytes else {
            throw refuse("the file is larger than \(ScenarioParser.maximumFileBytes / 1024) KiB, the limit for a target file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("the file is not UTF-8 text") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Target {
        guard text.utf8.count <= ScenarioParser.maximumFileBytes else {
            throw ScenarioValidationError(problems: [
                ScenarioProblem(
                    file: file, line: 1, column: 1,
                    message: "the file is larger than \(ScenarioParser.maximumFileBytes / 1024) KiB, the limit for a target file")
            ])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ScenarioValidationError(problems: [ScenarioParser.yamlProblem(error, text: text, file: file)])
        }
        var reader = TargetReader(file: file)
        guard let root, case .mapping = root else {
            throw ScenarioValidationError(problems: [
                ScenarioProblem(
                    file: file, line: root?.mark?.line ?? 1, column: root?.mark?.column ?? 1,
                    message: "found \(root.map(describe) ?? "an empty file"); expected a mapping with keys name, instances, database, operations, reset, seed, state")
            ])
        }
        let target = reader.target(root)
        if !reader.problems.isEmpty {
            var problems = reader.problems
            if reader.unreportedProblems > 0 {
                problems.append(
                    ScenarioProblem(
                        file: file, line: 1, column: 1,
                        message: "\(reader.unreportedProblems) more problems not shown (the first \(ScenarioParser.maximumReportedProblems) are above)"))
            }
            throw ScenarioValidationError(problems: problems)
        }
        return target!
    }
}

private struct TargetReader {
    let file: String
    var problems: [ScenarioProblem] = []
    var unreportedProblems = 0

    static let topKeys = [
        "name", "description", "instances", "database", "http", "operations", "responses", "otherwise", "reset", "seed", "state",
    ]
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    /// Bounds on a timeout: no request without one, none longer than five minutes.
    static let longestTimeoutSeconds = 300.0

    mutating func problem(_ node: Node?, _ message: String) {
        guard problems.count < ScenarioParser.maximumReportedProblems else {
            unreportedProblems += 1
            return
        }
        // Found values are quoted at most 80 characters long, so a message is long only when it lists
        // what was expected (the reasons): that list is kept whole; anything longer is cut.
        let bounded = message.count <= 1200 ? message : message.prefix(900) + " … " + message.suffix(120)
        problems.append(ScenarioProblem(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: bounded))
    }

    /// The mapping's entries in file order, each key known and none repeated.
    mutating func entries(_ node: Node, known: [String]?, section: String) -> [(name: String, key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            problem(node, "\(section): found \(describe(node)); expected a mapping")
            return []
        }
        var result: [(name: String, key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard case .scalar = key, let name = key.string, !name.isEmpty else {
                problem(key, "\(section): found \(describe(key)) as a key; expected a name")
                continue
            }
            if result.contains(where: { $0.name == name }) {
                problem(key, "\(section): '\(name)' appears twice")
                continue
            }
            if let known, !known.contains(name) {
                let hint = closest(name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                problem(key, "\(section): unknown key '\(name)'\(hint); expected one of \(known.joined(separator: ", "))")
                continue
            }
            result.append((name, key, value))
        }
        return result
    }

    func lookup(_ entries: [(name: String, key: Node, value: Node)], _ name: String) -> Node? {
        entries.first { $0.name == name }?.value
    }

    mutating func string(_ node: Node, _ field: String, nonEmpty: Bool = true) -> String? {
        guard case .scalar = node, let text = node.string, node.null == nil || !text.isEmpty else {
            problem(node, "\(field): found \(describe(node)); expected a string")
            return nil
        }
        if nonEmpty, text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            problem(node, "\(field): found an empty string; expected a value")
            return nil
        }
        return text
    }

    mutating func list(_ node: Node, _ field: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            problem(node, "\(field): found \(describe(node)); expected a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func timeout(_ node: Node, _ field: String) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let parsed = numberOrDuration(scalar.string), parsed.unit != nil
        else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a duration with its unit, such as 2s or 500ms")
            return nil
        }
        guard parsed.value > 0, parsed.value <= Self.longestTimeoutSeconds else {
            problem(node, "\(field): found \(scalar.string.prefix(40)); expected more than 0 and at most \(formatNumber(Self.longestTimeoutSeconds)) s")
            return nil
        }
        return parsed.value
    }

    // MARK: the file

    mutating func target(_ root: Node) -> Target? {
        let top = entries(root, known: Self.topKeys, section: "target")
        var name: String?
        if let node = lookup(top, "name") {
            name = string(node, "name")
            if let text = name, text.contains(where: { !($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                problem(node, "name: found '\(text.prefix(60))'; expected letters, digits, '-', '_' or '.' (reports name the target by it)")
                name = nil
            }
        } else {
            problem(root, "target: missing key 'name'")
        }
        let description = lookup(top, "description").flatMap { string($0, "description", nonEmpty: false) } ?? ""

        var baseURLs: [String] = []
        var spread = Target.Spread.roundRobin
        if let node = lookup(top, "instances") {
            (baseURLs, spread) = instances(node)
        } else {
            problem(root, "target: missing key 'instances' (base_urls: the service's URLs)")
        }
        var databaseVariable: String?
        if let node = lookup(top, "database") {
            let fields = entries(node, known: ["url_env"], section: "database")
            if let value = lookup(fields, "url_env") {
                databaseVariable = string(value, "database.url_env")
                if let text = databaseVariable, !isVariableName(text) {
                    problem(value, "database.url_env: found '\(text.prefix(60))'; expected the name of an environment variable holding the database URL, such as SHOP_DATABASE_URL (never the URL itself)")
                    databaseVariable = nil
                }
            } else {
                problem(node, "database: missing key 'url_env' (the environment variable holding the implementation's database URL)")
            }
        } else {
            problem(root, "target: missing key 'database' (url_env: the variable holding the implementation's database URL)")
        }

        var connectTimeout = 2.0
        var requestTimeout = 10.0
        var headers: [TargetHeader] = []
        if let node = lookup(top, "http") {
            let fields = entries(node, known: ["connect_timeout", "request_timeout", "headers"], section: "http")
            if let value = lookup(fields, "connect_timeout") { connectTimeout = timeout(value, "http.connect_timeout") ?? connectTimeout }
            if let value = lookup(fields, "request_timeout") { requestTimeout = timeout(value, "http.request_timeout") ?? requestTimeout }
            if let value = lookup(fields, "headers") { headers = headerList(value, "http.headers", arguments: []) }
        }

        let common = lookup(top, "responses").map { responseRules($0, "responses", operation: nil) } ?? []
        var otherwise = TargetResponseRule(statuses: [], when: [], outcome: .unknown, reason: "unexpected_response", result: [:])
        if let node = lookup(top, "otherwise") { otherwise = otherwiseRule(node, "otherwise") ?? otherwise }

        var operations: [String: TargetOperation] = [:]
        var operationNodes: [String: Node] = [:]
        if let node = lookup(top, "operations") {
            let list = entries(node, known: Target.operationNames, section: "operations")
            if list.isEmpty, case .mapping = node {
                problem(node, "operations: found none; expected at least one of \(Target.operationNames.joined(separator: ", "))")
            }
            for entry in list {
                operationNodes[entry.name] = entry.key
                if let operation = operation(entry.name, entry.value, common: common, otherwise: otherwise) {
                    operations[entry.name] = operation
                }
            }
        } else {
            problem(root, "target: missing key 'operations' (each operation as a request: \(Target.operationNames.joined(separator: ", ")))")
        }

        var reset: [TargetStatement] = []
        if let node = lookup(top, "reset") {
            reset = statements(node, "reset", allowed: [])
        } else {
            problem(root, "target: missing key 'reset' (the SQL that empties the implementation's tables before a run)")
        }

        var seed: [Target.SeedKind: [TargetStatement]] = [:]
        var seedAfter: [TargetStatement] = []
        if let node = lookup(top, "seed") {
            let fields = entries(node, known: Target.SeedKind.allCases.map(\.rawValue) + ["after"], section: "seed")
            for entry in fields {
                if entry.name == "after" {
                    seedAfter = statements(entry.value, "seed.after", allowed: [])
                } else if let kind = Target.SeedKind(rawValue: entry.name) {
                    seed[kind] = statements(entry.value, "seed.\(entry.name)", allowed: kind.parameters)
                }
            }
        } else {
            problem(root, "target: missing key 'seed' (the SQL that creates the scenario's users, products, coupons, orders)")
        }
        // A scenario's operations work on seeded entities: a target running one seeds them.
        for (operation, keyNode) in operationNodes.sorted(by: { $0.key < $1.key }) {
            let missing = Target.seedNeeded(by: operation).filter { seed[$0] == nil }
            if !missing.isEmpty, lookup(top, "seed") != nil {
                problem(
                    keyNode,
                    "operations.\(operation): works on \(missing.map(\.rawValue).joined(separator: ", ")) made before the run; expected seed.\(missing[0].rawValue) (an INSERT with \(missing[0].parameters.map { ":" + $0 }.joined(separator: ", ")))")
            }
        }

        var state: [Target.StateKind: TargetStatement] = [:]
        if let node = lookup(top, "state") {
            for entry in entries(node, known: Target.StateKind.allCases.map(\.rawValue), section: "state") {
                guard let kind = Target.StateKind(rawValue: entry.name),
                    let statement = statements(entry.value, "state.\(entry.name)", allowed: [], single: true).first
                else { continue }
                let words = Set(sqlWords(statement.source))
                let missing = kind.columns.filter { !words.contains($0) }
                if !missing.isEmpty {
                    problem(
                        entry.value,
                        "state.\(entry.name): the query must return the columns \(kind.columns.joined(separator: ", ")); \(missing.map { "'\($0)'" }.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") not named in it (write e.g. `point AS balance`, `member_id AS \"user\"`)")
                    continue
                }
                state[kind] = statement
            }
        } else {
            problem(root, "target: missing key 'state' (the SQL queries that give the checkers balances, stock, coupons, orders, cart lines)")
        }

        guard let name, let databaseVariable, !baseURLs.isEmpty, !operations.isEmpty else { return nil }
        return Target(
            file: file, name: name, description: description, baseURLs: baseURLs, spread: spread,
            databaseURLVariable: databaseVariable, connectTimeoutSeconds: connectTimeout, requestTimeoutSeconds: requestTimeout,
            headers: headers, operations: operations, reset: reset, seed: seed, seedAfter: seedAfter, state: state)
    }

    mutating func instances(_ node: Node) -> ([String], Target.Spread) {
        let fields = entries(node, known: ["base_urls", "spread"], section: "instances")
        var urls: [String] = []
        if let value = lookup(fields, "base_urls"), let list = list(value, "instances.base_urls") {
            if list.isEmpty { problem(value, "instances.base_urls: found an empty list; expected at least one URL") }
            for (index, element) in list.enumerated() {
                let field = "instances.base_urls[\(index)]"
                guard let text = string(element, field) else { continue }
                let names = variableNames(text)
                if let bad = names.first(where: { !isVariableName($0) }) {
                    problem(element, "\(field): found '${\(bad.prefix(40))}'; expected ${NAME} with NAME an environment variable (letters, digits, _)")
                    continue
                }
                // Checked as written with each variable standing for a host; again once resolved.
                let sample = substituteVariables(text) { _ in names.count == 1 && text.hasPrefix("${") ? "http://host" : "host" }
                if isHTTPSURL(sample) {
                    problem(element, "\(field): found '\(text.prefix(80))'; \(httpsRefusal)")
                    continue
                }
                guard isHTTPURL(sample) else {
                    problem(element, "\(field): found '\(text.prefix(80))'; expected an http:// URL with a host (or ${VARIABLE}), such as http://127.0.0.1:8080")
                    continue
                }
                urls.append(text)
            }
        } else {
            problem(node, "instances: missing key 'base_urls' (a list of the service's URLs)")
        }
        var spread = Target.Spread.roundRobin
        if let value = lookup(fields, "spread"), let text = string(value, "instances.spread") {
            if let parsed = Target.Spread(rawValue: text) {
                spread = parsed
            } else {
                problem(value, "instances.spread: found '\(text.prefix(40))'; expected one of \(Target.Spread.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        return (urls, spread)
    }

    // MARK: operations

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

    // MARK: responses

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

    // MARK: SQL

    /// One statement or a list of them; `:name` parameters among `allowed` only.
    mutating func statements(_ node: Node, _ field: String, allowed: [String], single: Bool = false) -> [TargetStatement] {
        let elements: [(Node, String)]
        if case .sequence(let sequence) = node, !single {
            elements = sequence.enumerated().map { ($0.element, "\(field)[\($0.offset)]") }
            if sequence.isEmpty { problem(node, "\(field): found an empty list; expected SQL statements") }
        } else {
            elements = [(node, field)]
        }
        var result: [TargetStatement] = []
        for (element, name) in elements {
            guard case .scalar = element, let text = string(element, name) else {
                if case .scalar = element {} else if single {
                    problem(element, "\(name): expected one SQL query as a string")
                }
                continue
            }
            let statement = TargetStatement(source: text, line: element.mark?.line ?? 1)
            let unknown = statement.parameters.filter { !allowed.contains($0) }
            if let first = unknown.first {
                if allowed.isEmpty {
                    problem(element, "\(name): found the parameter :\(first.prefix(40)); expected none here (a statement without parameters)")
                } else {
                    let hint = closest(first, in: allowed).map { " (did you mean ':\($0)'?)" } ?? ""
                    problem(element, "\(name): found the parameter :\(first.prefix(40))\(hint); expected only \(allowed.map { ":" + $0 }.joined(separator: ", "))")
                }
                continue
            }
            if sqlWords(text).isEmpty {
                problem(element, "\(name): expected an SQL statement")
                continue
            }
            result.append(statement)
        }
        return result
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

/// The words of an SQL text, lowercased, quotes dropped: `"user"` and `user` are both `user`.
func sqlWords(_ text: String) -> [String] {
    text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init)
}
