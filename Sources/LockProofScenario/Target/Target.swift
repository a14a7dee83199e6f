import Foundation
import LockProofCommerce

/// An implementation of the cases that LockProof drives through its HTTP API and judges by its own
/// database (issue 18): everything LockProof needs to know about it, read from `targets/NAME.yaml`
/// by `TargetParser` (the format is documented in targets/README.md).
public struct Target: Sendable, Equatable {
    public let file: String
    public let name: String
    public let description: String
    /// Base URLs as written: they may hold `${VARIABLE}`s, resolved by `resolvedBaseURLs`.
    public let baseURLs: [String]
    public let spread: Spread
    /// The environment variable holding the implementation's database URL (never the URL itself:
    /// a file in a repository holds no password).
    public let databaseURLVariable: String
    public let connectTimeoutSeconds: Double
    public let requestTimeoutSeconds: Double
    /// Headers on every request.
    public let headers: [TargetHeader]
    /// By operation name (`charge`, `pay`, `issue`, `create`, `complete`, `cancel`, `add`).
    public let operations: [String: TargetOperation]
    public let reset: [TargetStatement]
    /// Per seeded entity kind, the statements run once per entity with its values bound.
    public let seed: [SeedKind: [TargetStatement]]
    /// Run once after every entity was seeded (sequences, statistics).
    public let seedAfter: [TargetStatement]
    /// The queries that give the checkers what they judge; a kind not here is not checked.
    public let state: [StateKind: TargetStatement]

    /// How virtual users spread over several instances.
    public enum Spread: String, Sendable, CaseIterable {
        /// Virtual user i talks to instance i mod N for the whole run.
        case roundRobin = "round-robin"
        /// Every request goes to an instance picked at random (from the scenario's random seed).
        case random
    }

    /// The entities a scenario's seed creates, and the values each kind's statement may bind.
    public enum SeedKind: String, Sendable, CaseIterable {
        case users, products, coupons, orders
        case orderItems = "order_items"
        case cartLines = "cart_lines"
        /// Every user's daily spending limit (the sixth case's `seed.daily_limit`).
        case spendingLimits = "spending_limits"

        public var parameters: [String] {
            switch self {
            case .users: return ["id", "balance"]
            case .products: return ["id", "price", "stock"]
            case .coupons: return ["id", "quantity"]
            case .orders: return ["id", "user", "total"]
            case .orderItems: return ["order", "product", "quantity", "price"]
            case .cartLines: return ["user", "product", "quantity"]
            case .spendingLimits: return ["user", "daily_limit"]
            }
        }
    }

    /// What the checkers read of the final state, and the columns each query must return.
    public enum StateKind: String, Sendable, CaseIterable {
        case balances
        case balanceLedger = "balance_ledger"
        case stock
        case stockLedger = "stock_ledger"
        case orders
        case orderItems = "order_items"
        case coupons
        case couponIssues = "coupon_issues"
        case cartLines = "cart_lines"
        case compensations
        case spendingLimits = "spending_limits"
        case spends

        public var columns: [String] {
            switch self {
            case .balances: return ["user", "balance"]
            case .balanceLedger: return ["user", "delta", "reason", "reference"]
            case .stock: return ["product", "stock"]
            case .stockLedger: return ["product", "delta", "reason", "reference"]
            case .orders: return ["order", "user", "total", "status"]
            case .orderItems: return ["order", "product", "quantity"]
            case .coupons: return ["coupon", "total", "issued"]
            case .couponIssues: return ["coupon", "user"]
            case .cartLines: return ["user", "product", "quantity"]
            case .compensations: return ["order", "status"]
            case .spendingLimits: return ["user", "daily_limit"]
            // `day`: the date the implementation counts the spend against its daily limit.
            case .spends: return ["user", "day", "amount"]
            }
        }
    }

    /// The operations a scenario may run, with the arguments their templates may use and the
    /// results their responses may give the history.
    public static let operationNames = OperationName.allCases.map(\.rawValue)

    public static func arguments(of operation: String) -> [String] {
        switch operation {
        case "charge": return ["user", "amount", "key"]
        case "pay", "complete", "cancel": return ["order"]
        case "issue": return ["user", "coupon"]
        case "create": return ["user"]
        case "add": return ["user", "product", "quantity"]
        case "spend": return ["user", "amount"]
        default: return []
        }
    }

    /// Arguments an operation does not always have: a header or body field made only of one is
    /// left out when it is absent (`key`: only when the scenario sends idempotency keys).
    public static let optionalArguments: Set<String> = ["key"]

    public static func results(of operation: String) -> [String] {
        switch operation {
        case "charge": return ["balance", "applied", "attempts"]
        case "pay": return ["amount", "user"]
        case "issue": return ["issued_quantity"]
        case "create": return ["order", "total"]
        case "add": return ["quantity"]
        case "spend": return ["spent_today"]
        default: return []
        }
    }

    /// The seeded entities each operation works on: a target running it must seed them.
    public static func seedNeeded(by operation: String) -> [SeedKind] {
        switch operation {
        case "charge": return [.users]
        case "pay": return [.users, .products, .orders, .orderItems]
        case "complete", "cancel": return [.users, .orders]
        case "issue": return [.users, .coupons]
        case "create", "add": return [.users, .products]
        case "spend": return [.users, .spendingLimits]
        default: return []
        }
    }

    /// The reasons a `fail` or `unknown` may carry: those LockProof's own runs record (so that
    /// checkers and reports read a target's history like any other), and those only HTTP has.
    public static let knownReasons: [String] = [
        // business refusals
        "not_found", "invalid_amount", "invalid_quantity", "empty_order", "invalid_input", "insufficient_balance",
        "insufficient_stock", "sold_out", "already_issued", "already_issued_by_application_check",
        "already_issued_by_unique_constraint", "invalid_transition", "conflict", "order_not_payable", "payment_declined",
        "rate_limited", "daily_limit_exceeded",
        // the database and the service's resources
        "deadlock", "serialization_failure", "unique_violation", "check_violation", "foreign_key_violation",
        "lock_timeout", "query_canceled", "database_error", "retry_exhausted", "pool_timeout", "redis_error",
        "redis_lock_timeout", "gateway_timeout", "compensation_failed", "unavailable",
        // outcomes the client cannot tell
        "server_error", "timeout", "connection_lost", "connection_failed", "unexpected_response", "error",
    ]

    /// The request of `operation` for its arguments, with the target's common headers; nil when the
    /// target does not describe the operation.
    public func request(
        _ operation: String, arguments: [String: TargetValue], items: [(product: Int, quantity: Int)] = []
    ) -> TargetRequest? {
        operations[operation]?.request(arguments: arguments, items: items, commonHeaders: headers)
    }

    /// The operations of `wanted` this target does not describe: a scenario running any of them is
    /// refused before anything is written.
    public func missingOperations(_ wanted: some Sequence<String>) -> [String] {
        Set(wanted).subtracting(operations.keys).sorted()
    }

    /// The base URLs with every `${VARIABLE}` replaced from `environment`; an unset or empty
    /// variable, or a result that is not an http(s) URL, is an error naming the file and variable.
    /// A variable may hold several URLs separated by spaces (`LOCKPROOF_SERVE_URLS="http://a:1 http://b:2"`):
    /// one entry then names as many instances as the environment gives, without editing the file.
    public func resolvedBaseURLs(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        try baseURLs.flatMap { url -> [String] in
            var problem: String?
            let resolved = substituteVariables(url) { name in
                guard let value = environment[name], !value.isEmpty else {
                    problem = problem ?? "instances.base_urls: the environment variable \(name) is not set (\(url))"
                    return ""
                }
                return value
            }
            if let problem { throw TargetResolutionError(file: file, message: problem) }
            let parts = resolved.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
            guard !parts.isEmpty else {
                throw TargetResolutionError(file: file, message: "instances.base_urls: '\(url.prefix(200))' resolves to no URL")
            }
            return try parts.map { part in
                if isHTTPSURL(part) {
                    throw TargetResolutionError(file: file, message: "instances.base_urls: '\(part.prefix(200))': \(httpsRefusal)")
                }
                guard isHTTPURL(part) else {
                    throw TargetResolutionError(
                        file: file, message: "instances.base_urls: '\(part.prefix(200))' is not an http:// URL with a host")
                }
                return part.hasSuffix("/") ? String(part.dropLast()) : part
            }
        }
    }

    /// The implementation's database URL, from the variable the target names.
    public func databaseURL(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let value = environment[databaseURLVariable], !value.isEmpty else {
            throw TargetResolutionError(
                file: file, message: "database.url_env: the environment variable \(databaseURLVariable) is not set")
        }
        return value
    }
}

/// A target that cannot be used in this environment (a variable it names is unset).
public struct TargetResolutionError: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public var description: String { "\(file): error: \(message)" }
}

/// `${NAME}` replaced by `value(NAME)`; other text kept.
func substituteVariables(_ text: String, _ value: (String) -> String) -> String {
    var result = ""
    var rest = Substring(text)
    while let start = rest.range(of: "${") {
        result += rest[..<start.lowerBound]
        guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
            result += rest[start.lowerBound...]
            return result
        }
        result += value(String(rest[start.upperBound..<end]))
        rest = rest[rest.index(after: end)...]
    }
    return result + rest
}

/// The names of the `${NAME}`s in a text, and whether each is a valid variable name.
func variableNames(_ text: String) -> [String] {
    var names: [String] = []
    _ = substituteVariables(text) { name in
        names.append(name)
        return ""
    }
    return names
}

func isVariableName(_ name: String) -> Bool {
    guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
    return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
}

/// An `http://` URL with a host, no query and no fragment: what `TargetClient` can talk to.
func isHTTPURL(_ text: String) -> Bool { hasHostAndNoQuery(text, scheme: "http") }

/// An `https://` URL: well formed, but the client speaks plain HTTP/1.1 only.
func isHTTPSURL(_ text: String) -> Bool { hasHostAndNoQuery(text, scheme: "https") }

/// What a target file (or a variable) with an `https://` base URL is told.
let httpsRefusal = "expected an http:// URL (TLS is not supported by the client)"

private func hasHostAndNoQuery(_ text: String, scheme wanted: String) -> Bool {
    guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
        scheme == wanted, let host = components.host, !host.isEmpty,
        components.query == nil, components.fragment == nil
    else { return false }
    return true
}

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

/// A scalar of a template's arguments, a `when` condition or a JSON body.
public enum TargetValue: Sendable, Equatable {
    case integer(Int)
    case text(String)
    case boolean(Bool)
    case null

    var text: String {
        switch self {
        case .integer(let value): return String(value)
        case .text(let value): return value
        case .boolean(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    /// In a path, a text argument is percent-encoded; a number is written as is.
    var pathText: String {
        switch self {
        case .text(let value): return value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? value
        default: return text
        }
    }

    var json: TargetJSON {
        switch self {
        case .integer(let value): return .integer(value)
        case .text(let value): return .text(value)
        case .boolean(let value): return .boolean(value)
        case .null: return .null
        }
    }
}

/// A JSON value: what a response body is read into and a request body is written from. A number
/// with a fraction (or beyond Int) is `.number`; results and conditions need whole ones.
public indirect enum TargetJSON: Sendable, Equatable, Codable {
    case null
    case boolean(Bool)
    case integer(Int)
    case number(Double)
    case text(String)
    case list([TargetJSON])
    case object([String: TargetJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .boolean(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .text(value)
        } else if let value = try? container.decode([TargetJSON].self) {
            self = .list(value)
        } else {
            self = .object(try container.decode([String: TargetJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .boolean(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .text(let value): try container.encode(value)
        case .list(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// Text with `{argument}` placeholders (`{item.product}` inside `$each_item`); `{{` and `}}` are
/// literal braces.
public struct TargetTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case argument(String)
    }

    public let parts: [Part]
    public let text: String

    /// The arguments it names.
    public var arguments: [String] {
        parts.compactMap {
            if case .argument(let name) = $0 { return name }
            return nil
        }
    }

    /// nil when it names an argument that is absent (a header or field then left out). A template
    /// that is exactly one placeholder keeps the argument's type (a number stays a number in JSON).
    func render(_ values: [String: TargetValue]) -> TargetValue? {
        if parts.count == 1, case .argument(let name) = parts[0] { return values[name] }
        var result = ""
        for part in parts {
            switch part {
            case .literal(let text): result += text
            case .argument(let name):
                guard let value = values[name] else { return nil }
                result += value.text
            }
        }
        return .text(result)
    }
}

extension TargetValue {
    /// A rendered path: each argument percent-encoded, the literal text as written.
    static func pathOf(_ template: TargetTemplate, _ values: [String: TargetValue]) -> String? {
        var result = ""
        for part in template.parts {
            switch part {
            case .literal(let text): result += text
            case .argument(let name):
                guard let value = values[name] else { return nil }
                result += value.pathText
            }
        }
        return result
    }
}

/// A JSON body template: objects and lists of templates and constants; `{$each_item: T}` is a list
/// with T rendered once per order item (`{item.product}`, `{item.quantity}`).
public indirect enum TargetBody: Sendable, Equatable {
    case object([Field])
    case list([TargetBody])
    case template(TargetTemplate)
    case constant(TargetValue)
    case eachItem(TargetBody)

    public struct Field: Sendable, Equatable {
        public let name: String
        public let value: TargetBody
    }

    /// nil when the value names an absent argument (a field then left out, a list element too).
    func render(_ values: [String: TargetValue], items: [(product: Int, quantity: Int)]) -> TargetJSON? {
        switch self {
        case .constant(let value): return value.json
        case .template(let template): return template.render(values)?.json
        case .list(let elements): return .list(elements.compactMap { $0.render(values, items: items) })
        case .object(let fields):
            var object: [String: TargetJSON] = [:]
            for field in fields {
                if let value = field.value.render(values, items: items) { object[field.name] = value }
            }
            return .object(object)
        case .eachItem(let element):
            return .list(items.compactMap { item in
                var scoped = values
                scoped["item.product"] = .integer(item.product)
                scoped["item.quantity"] = .integer(item.quantity)
                return element.render(scoped, items: [])
            })
        }
    }

    /// Every template in it.
    var templates: [TargetTemplate] {
        switch self {
        case .constant: return []
        case .template(let template): return [template]
        case .list(let elements): return elements.flatMap(\.templates)
        case .object(let fields): return fields.flatMap(\.value.templates)
        case .eachItem(let element): return element.templates
        }
    }
}

/// `$`, `$.data.id`, `$.items[0].id`, `$['odd key']`: a path into a JSON response.
public struct TargetJSONPath: Sendable, Equatable {
    public enum Component: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    public let components: [Component]
    public let text: String

    /// nil when `text` is not such a path.
    public init?(_ text: String) {
        var rest = Substring(text)
        guard rest.first == "$" else { return nil }
        rest = rest.dropFirst()
        var components: [Component] = []
        while let first = rest.first {
            if first == "." {
                rest = rest.dropFirst()
                let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                guard !name.isEmpty else { return nil }
                components.append(.key(String(name)))
                rest = rest.dropFirst(name.count)
            } else if first == "[" {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if let index = Int(inside), index >= 0, inside.allSatisfy(\.isNumber) {
                    components.append(.index(index))
                } else if inside.count >= 2, let quote = inside.first, quote == "'" || quote == "\"", inside.last == quote {
                    components.append(.key(String(inside.dropFirst().dropLast())))
                } else {
                    return nil
                }
                rest = rest[rest.index(after: close)...]
            } else {
                return nil
            }
        }
        self.components = components
        self.text = text
    }

    public func evaluate(_ json: TargetJSON?) -> TargetJSON? {
        var current = json
        for component in components {
            switch (component, current) {
            case (.key(let key), .object(let object)?): current = object[key]
            case (.index(let index), .list(let list)?) where index < list.count: current = list[index]
            default: return nil
            }
        }
        return current
    }
}

/// An SQL statement of the target, its `:name` parameters turned into `$1`, `$2`, … (bound, never
/// spliced into the text).
public struct TargetStatement: Sendable, Equatable {
    /// As written in the file.
    public let source: String
    /// With `$n` placeholders.
    public let sql: String
    /// The name bound to `$1`, `$2`, …
    public let parameters: [String]
    /// Where it is written, for errors at run time.
    public let line: Int

    /// Finds `:name` outside quoted strings, quoted identifiers, comments and `::` casts.
    public init(source: String, line: Int) {
        self.source = source
        self.line = line
        var sql = ""
        var names: [String] = []
        let characters = Array(source)
        var index = 0
        func isNameStart(_ c: Character) -> Bool { c == "_" || (c.isASCII && c.isLetter) }
        func isName(_ c: Character) -> Bool { c == "_" || (c.isASCII && (c.isLetter || c.isNumber)) }
        while index < characters.count {
            let c = characters[index]
            if c == "'" || c == "\"" {
                // Quoted: copy to the closing quote ('' and "" are escaped quotes inside).
                var end = index + 1
                while end < characters.count {
                    if characters[end] == c {
                        if end + 1 < characters.count, characters[end + 1] == c {
                            end += 2
                            continue
                        }
                        break
                    }
                    end += 1
                }
                sql += String(characters[index...min(end, characters.count - 1)])
                index = end + 1
            } else if c == "-", index + 1 < characters.count, characters[index + 1] == "-" {
                let end = characters[index...].firstIndex(of: "\n") ?? characters.count
                sql += String(characters[index..<end])
                index = end
            } else if c == ":", index + 1 < characters.count, characters[index + 1] == ":" {
                sql += "::"
                index += 2
            } else if c == ":", index + 1 < characters.count, isNameStart(characters[index + 1]) {
                var end = index + 1
                while end < characters.count, isName(characters[end]) { end += 1 }
                let name = String(characters[(index + 1)..<end])
                if !names.contains(name) { names.append(name) }
                sql += "$\(names.firstIndex(of: name)! + 1)"
                index = end
            } else {
                sql.append(c)
                index += 1
            }
        }
        self.sql = sql
        self.parameters = names
    }
}
