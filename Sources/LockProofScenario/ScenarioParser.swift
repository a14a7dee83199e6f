import Foundation
import LockProofCommerce
import LockProofLocking
import Yams

/// A problem in a scenario file, with where it is.
public struct ScenarioProblem: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String { "\(file):\(line):\(column): error: \(message)" }
}

/// Every problem found in one file (validation reports them all, not just the first).
public struct ScenarioValidationError: Error, Sendable, CustomStringConvertible {
    public let problems: [ScenarioProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Reads and validates scenario files before anything runs.
public enum ScenarioParser {
    /// A scenario file is a page of YAML; anything larger is refused before it is parsed, so that
    /// a huge file (or /dev/zero) costs neither time nor memory.
    public static let maximumFileBytes = 1 << 20
    /// At most this many problems of one file are reported, then how many more there were.
    public static let maximumReportedProblems = 50

    public static func load(path: String) throws -> Scenario {
        func refuse(_ message: String) -> ScenarioValidationError {
            ScenarioValidationError(problems: [ScenarioProblem(file: path, line: 1, column: 1, message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: path)
        else { throw refuse("cannot read the file (does it exist?)") }
        defer { try? handle.close() }
        // Read at most one byte past the cap: the size is known without reading the rest.
        let data = (try? handle.read(upToCount: maximumFileBytes + 1)) ?? Data()
        guard data.count <= maximumFileBytes else {
            throw refuse("the file is larger than \(maximumFileBytes / 1024) KiB, the limit for a scenario file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("the file is not UTF-8 text") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Scenario {
        guard text.utf8.count <= maximumFileBytes else {
            throw ScenarioValidationError(problems: [
                ScenarioProblem(
                    file: file, line: 1, column: 1,
                    message: "the file is larger than \(maximumFileBytes / 1024) KiB, the limit for a scenario file")
            ])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ScenarioValidationError(problems: [yamlProblem(error, text: text, file: file)])
        }
        var reader = Reader(file: file)
        guard let root, case .mapping = root else {
            throw ScenarioValidationError(problems: [
                ScenarioProblem(
                    file: file, line: root?.mark?.line ?? 1, column: root?.mark?.column ?? 1,
                    message: "found \(root.map(describe) ?? "an empty file"); expected a mapping with keys name, case, workload, …")
            ])
        }
        let scenario = reader.scenario(root)
        if !reader.problems.isEmpty {
            var problems = reader.problems
            if reader.unreportedProblems > 0 {
                problems.append(
                    ScenarioProblem(
                        file: file, line: 1, column: 1,
                        message: "\(reader.unreportedProblems) more problems not shown (the first \(maximumReportedProblems) are above)"))
            }
            throw ScenarioValidationError(problems: problems)
        }
        return scenario!
    }

    /// A YAML error at its own line and column. Never the text of the file: Yams puts the whole
    /// input into some of its errors (duplicate keys), which would copy a file into the message.
    static func yamlProblem(_ error: YamlError, text: String, file: String) -> ScenarioProblem {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "not valid YAML: \(problem.prefix(200))\(context.map { " \($0.text.prefix(200))" } ?? "")")
        case .composer(_, let problem, let mark, _) where problem.contains("another document"):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "a second YAML document starts here; a scenario file holds exactly one")
        case .composer(let context, let problem, let mark, _):
            return ScenarioProblem(
                file: file, line: mark.line, column: mark.column,
                message: "not valid YAML: \(problem.prefix(200))\(context.map { " \($0.text.prefix(200))" } ?? "")")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? ""
            let first = context.mark
            let repeated = repeatedKeyMark(key, after: first, in: text) ?? (first.line, first.column)
            let shown = key.count <= 64 ? "'\(key)'" : "a key"
            return ScenarioProblem(
                file: file, line: repeated.line, column: repeated.column,
                message: "\(shown) appears twice in one mapping (first at \(first.line):\(first.column))")
        case .reader(let problem, let offset, _, _):
            let (line, column) = offset.map { position(ofCharacterOffset: $0, in: text) } ?? (1, 1)
            return ScenarioProblem(file: file, line: line, column: column, message: "not valid YAML: \(problem.prefix(200))")
        default:
            return ScenarioProblem(file: file, line: 1, column: 1, message: "not valid YAML")
        }
    }

    /// Where `key` is written again as a key after its first occurrence: Yams reports only the
    /// first. A key is the name at the start of a line's content, or after `{` or `,`, followed
    /// (perhaps after quotes and spaces) by `:`.
    static func repeatedKeyMark(_ key: String, after first: Mark, in text: String) -> (line: Int, column: Int)? {
        guard !key.isEmpty else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where index + 1 >= first.line {
            let characters = Array(line)
            let start = index + 1 == first.line ? first.column : 0
            var column = start
            while column < characters.count {
                defer { column += 1 }
                let before = characters[..<column].last { $0 != " " && $0 != "\t" }
                guard before == nil || before == "{" || before == "," || before == "-" || before == "?" else { continue }
                var cursor = column
                if cursor < characters.count, characters[cursor] == "\"" || characters[cursor] == "'" { cursor += 1 }
                let name = Array(key)
                guard cursor + name.count <= characters.count, Array(characters[cursor..<(cursor + name.count)]) == name else { continue }
                cursor += name.count
                if cursor < characters.count, characters[cursor] == "\"" || characters[cursor] == "'" { cursor += 1 }
                while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                if cursor < characters.count, characters[cursor] == ":" { return (index + 1, column + 1) }
            }
        }
        return nil
    }

    private static func position(ofCharacterOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}

/// A whole number as a person writes it: digits, optionally grouped by single underscores
/// (`10_000`), optionally signed. Not `1__0`, `0x10`, `1e3` or `+`: YAML 1.1 reads such forms as
/// numbers in ways no reader of the file expects.
func strictInteger(_ text: String) -> Int? {
    var digits = Substring(text)
    if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
    let groups = digits.split(separator: "_", omittingEmptySubsequences: false)
    guard !digits.isEmpty, groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
    return Int(text.replacingOccurrences(of: "_", with: ""))
}

/// The units a duration may carry (k6's spelling), in seconds.
let durationUnits: [(suffix: String, seconds: Double)] = [("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60)]

/// `50ms` as 0.05 seconds and its unit "ms"; a bare number as itself without a unit; nil when neither.
func numberOrDuration(_ text: String) -> (value: Double, unit: String?)? {
    if let number = strictDecimal(text) { return (number, nil) }
    // Longest suffix first: "ms" before "s" and "m".
    for unit in durationUnits.sorted(by: { $0.suffix.count > $1.suffix.count }) where text.hasSuffix(unit.suffix) {
        let number = String(text.dropLast(unit.suffix.count)).trimmingCharacters(in: .whitespaces)
        if let value = strictDecimal(number) { return (value * unit.seconds, unit.suffix) }
    }
    return nil
}

/// A decimal number: `12`, `0.5`, `.5`, `2.5e-3`. Not hexadecimal (`0x1p3`, which Swift's
/// `Double(_:)` accepts), not `inf` or `nan`, no underscores.
func strictDecimal(_ text: String) -> Double? {
    var rest = Substring(text)
    if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
    func digits() -> Int {
        let count = rest.prefix { $0.isASCII && $0.isNumber }.count
        rest = rest.dropFirst(count)
        return count
    }
    var mantissaDigits = digits()
    if rest.first == "." {
        rest = rest.dropFirst()
        mantissaDigits += digits()
    }
    guard mantissaDigits > 0 else { return nil }
    if rest.first == "e" || rest.first == "E" {
        rest = rest.dropFirst()
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        guard digits() > 0 else { return nil }
    }
    guard rest.isEmpty, let value = Double(text), value.isFinite else { return nil }
    return value
}

/// Like `describe`, but says when a number was quoted (a string, not a number).
func describeNumberLike(_ node: Node) -> String {
    if case .scalar(let scalar) = node, scalar.style != .plain, strictDecimal(scalar.string) != nil {
        return "the quoted string '\(scalar.string.prefix(40))' (write numbers without quotes)"
    }
    return describe(node)
}

func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
        if scalar.string.isEmpty || node.null != nil { return "null" }
        // Not `node.int`: Yams reads YAML 1.1 base-60 integers (`99999:59:59:…`) with arithmetic
        // that traps on overflow, which crashed `lockproof check` (found by `make fuzz`).
        if strictInteger(scalar.string) != nil || strictDecimal(scalar.string) != nil { return "the number \(scalar.string)" }
        if node.bool != nil { return "the boolean \(scalar.string)" }
        return scalar.string.count <= 60 ? "the string '\(scalar.string)'" : "the string '\(scalar.string.prefix(60))…'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

/// Walks the node tree, converting values and collecting problems with their positions.
private struct Reader {
    let file: String
    var problems: [ScenarioProblem] = []
    /// Problems past the reporting cap: counted, not kept, so memory stays bounded.
    var unreportedProblems = 0

    mutating func problem(_ node: Node?, _ message: String) {
        guard problems.count < ScenarioParser.maximumReportedProblems else {
            unreportedProblems += 1
            return
        }
        // A message quotes what it found; a value of a megabyte must not be copied into it whole.
        let bounded = message.count <= 400 ? message : message.prefix(250) + " … " + message.suffix(120)
        problems.append(
            ScenarioProblem(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1, message: bounded))
    }

    /// The mapping's entries, checking that every key is known and none repeats.
    mutating func entries(_ node: Node, known: [String], section: String) -> [String: (key: Node, value: Node)] {
        guard case .mapping(let mapping) = node else {
            problem(node, "\(section): found \(describe(node)); expected a mapping")
            return [:]
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.string, case .scalar = key else {
                problem(key, "\(section): found \(describe(key)) as a key; expected one of \(known.joined(separator: ", "))")
                continue
            }
            if result[name] != nil {
                problem(key, "\(section): '\(name)' appears twice")
                continue
            }
            if !known.contains(name) {
                let hint = closest(name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                problem(key, "\(section): unknown key '\(name)'\(hint); expected one of \(known.joined(separator: ", "))")
                continue
            }
            result[name] = (key, value)
        }
        return result
    }

    mutating func string(_ node: Node, _ field: String) -> String? {
        guard case .scalar = node, let text = node.string, node.null == nil || !text.isEmpty else {
            problem(node, "\(field): found \(describe(node)); expected a string")
            return nil
        }
        return text
    }

    mutating func integer(_ node: Node, _ field: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = strictInteger(scalar.string) else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a whole number in \(range.lowerBound)…\(range.upperBound)")
            return nil
        }
        guard range.contains(value) else {
            problem(node, "\(field): found \(value); expected a whole number in \(range.lowerBound)…\(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ field: String, range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = strictDecimal(scalar.string) else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a number in \(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))")
            return nil
        }
        guard range.contains(value) else {
            problem(node, "\(field): found \(formatNumber(value)); expected a number in \(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))")
            return nil
        }
        return value
    }

    mutating func boolean(_ node: Node, _ field: String) -> Bool? {
        guard case .scalar = node, let value = node.bool else {
            problem(node, "\(field): found \(describe(node)); expected true or false")
            return nil
        }
        return value
    }

    mutating func choice<T: RawRepresentable>(_ node: Node, _ field: String, _ options: [T]) -> T? where T.RawValue == String {
        guard let text = string(node, field) else { return nil }
        guard let value = options.first(where: { $0.rawValue == text }) else {
            problem(node, "\(field): found '\(text)'; expected one of \(options.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }

    /// `10s`, `500ms`, `2m`, or a bare number of seconds.
    mutating func duration(_ node: Node, _ field: String) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            problem(node, "\(field): found \(describeNumberLike(node)); expected a duration such as 30s, 500ms or 2m")
            return nil
        }
        let text = scalar.string
        guard let seconds = numberOrDuration(text)?.value else {
            problem(node, "\(field): found \(describe(node)); expected a positive duration such as 30s, 500ms or 2m")
            return nil
        }
        guard seconds > 0, seconds <= Self.longestDurationSeconds else {
            problem(
                node,
                "\(field): found \(text.prefix(40)) (\(formatNumber(seconds)) s); expected more than 0 and at most \(formatNumber(Self.longestDurationSeconds)) s (24 hours), such as 30s, 500ms or 2m")
            return nil
        }
        return seconds
    }

    /// The longest duration a scenario may write (a run, a timeout, a fault's start, length or
    /// interval): a day. Longer is a typo, and a run of that length is no test.
    static let longestDurationSeconds: Double = 86_400

    mutating func scenario(_ root: Node) -> Scenario? {
        let top = entries(
            root, known: ["name", "description", "case", "strategy", "seed", "workload", "faults", "expect", "thresholds"],
            section: "scenario")
        var name: String?
        if let entry = top["name"] {
            name = string(entry.value, "name")
            if let text = name, text.isEmpty || text.contains(where: { !($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                problem(entry.value, "name: found '\(text)'; expected letters, digits, '-', '_' or '.' (it names report files)")
                name = nil
            }
        } else {
            problem(root, "scenario: missing key 'name'")
        }
        let description = top["description"].flatMap { string($0.value, "description") } ?? ""
        var caseName: CaseName?
        let mixEntry = top["workload"].flatMap { mappingEntry($0.value, "mix") }
        if let entry = top["case"] {
            caseName = choice(entry.value, "case", CaseName.allCases)
        } else if mixEntry == nil {
            problem(root, "scenario: missing key 'case'; expected one of \(CaseName.allCases.map(\.rawValue).joined(separator: ", ")) (or a workload.mix naming the operations)")
        }
        var strategy = "seed"
        if let entry = top["strategy"], let text = string(entry.value, "strategy") {
            strategy = text
            if let caseName, !caseName.strategyNames.contains(text) {
                problem(entry.value, "strategy: found '\(text)'; case \(caseName.rawValue) has \(caseName.strategyNames.joined(separator: ", "))")
            } else if top["case"] == nil {
                problem(entry.value, "strategy: applies to the operations of 'case', and there is none; give each operation of workload.mix its own, e.g. charge: {weight: 1, strategy: \(text)}")
            }
        }
        let seed = top["seed"].map { seedSpec($0.value) } ?? SeedSpec()
        var workload = WorkloadSpec()
        if let entry = top["workload"] {
            workload = workloadSpec(entry.value, caseName: caseName)
        } else {
            problem(root, "scenario: missing key 'workload' (virtual_users and iterations or duration)")
        }
        var operations: [OperationSpec] = []
        if let mixEntry {
            operations = mix(mixEntry.value, caseName: top["case"] == nil ? nil : caseName, strategy: strategy)
            if let caseName, !operations.isEmpty, !operations.contains(where: { $0.caseName == caseName }) {
                problem(
                    top["case"]!.value,
                    "case: found '\(caseName.rawValue)', but workload.mix has none of its operations (\(caseName.operations.map(\.rawValue).joined(separator: ", "))); drop 'case' or add one")
            }
        } else if let caseName {
            operations = [OperationSpec(operation: caseName.operations[0], strategy: strategy, weight: 1)]
        }
        let mainCase = top["case"] == nil ? operations.first?.caseName : caseName
        var expect = Scenario.Expectation.pass
        if let entry = top["expect"], let value = choice(entry.value, "expect", [Scenario.Expectation.pass, .violation]) {
            expect = value
        }
        guard let name, let mainCase, !operations.isEmpty else { return nil }
        var scenario = Scenario(
            file: file, name: name, description: description, caseName: mainCase,
            strategy: operations.first { $0.caseName == mainCase }?.strategy ?? strategy, operations: operations, seed: seed,
            workload: workload, expect: expect, thresholds: [])
        if let entry = top["thresholds"] {
            scenario.thresholds = thresholdList(entry.value, scenario: scenario)
        }
        if let entry = top["faults"] {
            scenario.faults = faultList(entry.value, scenario: scenario)
        }
        if workload.payAfterCreate, !scenario.performs(.create), let entry = top["workload"] {
            problem(entry.value, "workload.pay_after_create: only create-order can pay what it creates")
        }
        let orderOperations = OperationName.allCases.filter { $0.reads.contains(.orders) && operations.map(\.operation).contains($0) }.map(\.rawValue)
        if !orderOperations.isEmpty, seed.orders == 0 {
            problem(top["seed"]?.value ?? root, "seed.orders: \(orderOperations.joined(separator: ", ")) work on orders made before the run; expected at least 1")
        }
        if seed.orders > 0, seed.orderItems > seed.products {
            problem(top["seed"]?.value ?? root, "seed.order_items: found \(seed.orderItems); expected at most seed.products (\(seed.products))")
        }
        if scenario.performs(.create), workload.items > seed.products {
            problem(top["workload"]?.value ?? root, "workload.items: found \(workload.items); expected at most seed.products (\(seed.products))")
        }
        if let mixEntry, let iterations = workload.iterations, operations.count > 1 {
            checkEveryOperationRuns(MixPlan(operations), mixEntry.value, virtualUsers: workload.virtualUsers, iterations: iterations)
        }
        if seed.cartQuantity > 0, seed.users * seed.products > 1_000_000 {
            problem(top["seed"]?.value ?? root, "seed.cart_quantity: opens a line for each of users × products = \(seed.users * seed.products); expected at most 1000000")
        }
        rejectKeysThatDoNotApply(scenario, seed: top["seed"]?.value, workload: top["workload"]?.value)
        return scenario
    }

    /// A key no operation of the scenario reads would be silently ignored (an `amount` on a
    /// payment, which always costs its order's total): refuse it and say who reads it.
    mutating func rejectKeysThatDoNotApply(_ scenario: Scenario, seed: Node?, workload: Node?) {
        let names = Set(scenario.operations.map(\.operation) + scenario.followUps)
        let running = "this scenario runs \(names.map(\.rawValue).sorted().joined(separator: ", "))"
        // Who reads each key comes from the descriptors (`CaseDescriptor.reads`).
        func check(_ section: String, _ node: Node?, _ key: ScenarioKey, why: String? = nil) {
            let users = OperationName.allCases.filter { $0.reads.contains(key) }
            guard let node, let entry = mappingEntry(node, key.rawValue), names.isDisjoint(with: users) else { return }
            problem(entry.key, "\(section).\(key.rawValue): does not apply: \(running), and it is read only by \(users.map(\.rawValue).joined(separator: ", "))\(why.map { "; \($0)" } ?? "")")
        }
        check("workload", workload, .amount, why: "a payment costs its order's order_items × order_quantity × price")
        check("workload", workload, .items, why: "pre-made orders take seed.order_items")
        check("workload", workload, .itemOrder)
        check("workload", workload, .quantity, why: "pre-made orders take seed.order_quantity")
        check("workload", workload, .gateway, why: "only a payment calls the gateway")
        check("workload", workload, .idempotencyKeys)
        check("workload", workload, .idempotencyDuplicates)
        for key in [ScenarioKey.balance, .couponQuantity, .orders, .orderItems, .orderQuantity, .products, .price, .stock, .cartQuantity] {
            check("seed", seed, key)
        }
        for key in Self.caseSeedKeys {
            let readers = CaseName.allCases.filter { $0.descriptor.storage.seedKeys.contains(key) }
            guard let seed, let entry = mappingEntry(seed, key.name), Set(scenario.cases).isDisjoint(with: readers) else { continue }
            let operations = readers.flatMap(\.operations).map(\.rawValue)
            problem(entry.key, "seed.\(key.name): does not apply: \(running), and it is read only by \(operations.joined(separator: ", "))")
        }
        if let workload, let entry = mappingEntry(workload, "retry"), !scenario.retries {
            problem(entry.key, "workload.retry: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) retries; \(Self.retryingStrategies) do")
        }
        if let workload, let entry = mappingEntry(workload, "lock"), !scenario.locksTaken.contains(.redis) {
            problem(entry.key, "workload.lock: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) takes the Redis lock")
        }
        if let workload, let entry = mappingEntry(workload, "breaker"), !scenario.locksTaken.contains(.redis) {
            problem(entry.key, "workload.breaker: does not apply: no strategy of this scenario (\(scenario.strategyLabel)) takes the Redis lock the breaker guards")
        }
    }

    /// `charge-balance seed, optimistic-retry; order-state optimistic-retry`: the strategies that
    /// retry, from the descriptors' traits.
    static var retryingStrategies: String {
        CaseName.allCases.compactMap { caseName in
            let names = caseName.strategyNames.filter { caseName.traits($0)?.retries == true }
            return names.isEmpty ? nil : "\(caseName.rawValue) \(names.joined(separator: ", "))"
        }.joined(separator: "; ")
    }

    /// The value node of `key` in a mapping, if it is one and has the key.
    func mappingEntry(_ node: Node, _ key: String) -> (key: Node, value: Node)? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping.first { $0.key.string == key }.map { ($0.key, $0.value) }
    }

    /// `workload.mix`: operation → weight, or → {weight, strategy}. An operation's strategy
    /// defaults to the scenario's `strategy` for the operations of `case`, else to the seed's.
    mutating func mix(_ node: Node, caseName: CaseName?, strategy: String) -> [OperationSpec] {
        let allNames = CaseName.allCases.flatMap(\.operations).map(\.rawValue)
        let fields = entries(node, known: allNames, section: "workload.mix")
        var result: [OperationSpec] = []
        for name in fields.keys.sorted() {
            let value = fields[name]!.value
            let operation = OperationName(rawValue: name)!
            let operationCase = operation.caseName
            var spec = OperationSpec(operation: operation, strategy: operationCase == caseName ? strategy : "seed", weight: 1)
            let field = "workload.mix.\(name)"
            if case .mapping = value {
                let parts = entries(value, known: ["weight", "strategy"], section: field)
                if let entry = parts["weight"] {
                    guard let weight = integer(entry.value, "\(field).weight", range: 0...1_000_000_000) else { continue }
                    spec.weight = weight
                }
                if let entry = parts["strategy"], let text = string(entry.value, "\(field).strategy") {
                    guard operationCase.strategyNames.contains(text) else {
                        problem(entry.value, "\(field).strategy: found '\(text)'; \(name) (\(operationCase.rawValue)) has \(operationCase.strategyNames.joined(separator: ", "))")
                        continue
                    }
                    spec.strategy = text
                }
            } else {
                guard let weight = integer(value, field, range: 0...1_000_000_000) else { continue }
                spec.weight = weight
            }
            // Weight 0 leaves an operation out, as before.
            if spec.weight > 0 { result.append(spec) }
        }
        if !fields.isEmpty && result.isEmpty && problems.isEmpty {
            problem(node, "workload.mix: every weight is 0; expected at least one positive weight")
        }
        if case .mapping(let mapping) = node, mapping.count == 0 {
            problem(node, "workload.mix: found an empty mapping; expected operation: weight entries")
        }
        return result
    }

    /// A mix whose weights leave an operation with no slot at some client count cannot be what
    /// was meant (a race of complete against cancel with no cancel): refuse it and say why.
    mutating func checkEveryOperationRuns(_ plan: MixPlan, _ node: Node, virtualUsers: [Int], iterations: Int) {
        for count in virtualUsers {
            let slots = count * iterations
            let runs = plan.counts(slots: slots)
            if let idle = plan.operations.indices.first(where: { runs[$0] == 0 }) {
                let shares = zip(plan.operations, runs).map { "\($0.name) \($1)" }.joined(separator: ", ")
                problem(
                    node,
                    "workload.mix: with \(count) virtual users × \(iterations) iterations = \(slots) operations, weights totalling \(plan.total) give \(shares): \(plan.operations[idle].name) never runs, so nothing races it; lower the weights or run more operations")
                return
            }
        }
    }
    mutating func seedSpec(_ node: Node) -> SeedSpec {
        var seed = SeedSpec()
        let fields = entries(
            node,
            known: [
                "users", "balance", "products", "price", "stock", "coupon_quantity", "orders", "order_items", "order_quantity",
                "cart_quantity",
            ] + Self.caseSeedKeys.map(\.name),
            section: "seed")
        let big = 0...1_000_000_000
        if let v = fields["users"].flatMap({ integer($0.value, "seed.users", range: 1...100_000) }) { seed.users = v }
        if let v = fields["balance"].flatMap({ integer($0.value, "seed.balance", range: big) }) { seed.balance = v }
        if let v = fields["products"].flatMap({ integer($0.value, "seed.products", range: 1...100_000) }) { seed.products = v }
        if let v = fields["price"].flatMap({ integer($0.value, "seed.price", range: big) }) { seed.price = v }
        if let v = fields["stock"].flatMap({ integer($0.value, "seed.stock", range: big) }) { seed.stock = v }
        if let v = fields["coupon_quantity"].flatMap({ integer($0.value, "seed.coupon_quantity", range: 0...10_000_000) }) {
            seed.couponQuantity = v
        }
        if let v = fields["orders"].flatMap({ integer($0.value, "seed.orders", range: 0...1_000_000) }) { seed.orders = v }
        if let v = fields["order_items"].flatMap({ integer($0.value, "seed.order_items", range: 1...100) }) { seed.orderItems = v }
        if let v = fields["order_quantity"].flatMap({ integer($0.value, "seed.order_quantity", range: 1...1_000_000) }) {
            seed.orderQuantity = v
        }
        if let v = fields["cart_quantity"].flatMap({ integer($0.value, "seed.cart_quantity", range: 0...1_000_000) }) {
            seed.cartQuantity = v
        }
        for key in Self.caseSeedKeys {
            if let v = fields[key.name].flatMap({ integer($0.value, "seed.\(key.name)", range: key.range) }) { seed.caseValues[key.name] = v }
        }
        return seed
    }

    /// The seed keys of the cases' own (`CaseStorage.seedKeys`), each once.
    static var caseSeedKeys: [SeedKey] {
        var keys: [SeedKey] = []
        for caseName in CaseName.allCases {
            for key in caseName.descriptor.storage.seedKeys where !keys.contains(where: { $0.name == key.name }) { keys.append(key) }
        }
        return keys
    }

    mutating func workloadSpec(_ node: Node, caseName: CaseName?) -> WorkloadSpec {
        var workload = WorkloadSpec()
        let fields = entries(
            node,
            known: [
                "virtual_users", "iterations", "duration", "start", "pick", "amount", "items", "quantity", "item_order",
                "think_ms", "mix", "gateway", "random_seed", "pay_after_create", "idempotency_keys", "idempotency_duplicates", "retry", "lock",
                "breaker", "row_lock_timeout_ms", "timeout", "connections",
            ], section: "workload")
        if let entry = fields["virtual_users"] {
            if case .sequence(let items) = entry.value {
                let counts = items.compactMap { integer($0, "workload.virtual_users", range: 1...1_000) }
                if items.isEmpty { problem(entry.value, "workload.virtual_users: found an empty list; expected at least one count") }
                if counts.count == items.count && !counts.isEmpty { workload.virtualUsers = counts }
            } else if let count = integer(entry.value, "workload.virtual_users", range: 1...1_000) {
                workload.virtualUsers = [count]
            }
        } else {
            problem(node, "workload: missing key 'virtual_users'")
        }
        let iterations = fields["iterations"].flatMap { integer($0.value, "workload.iterations", range: 1...10_000_000) }
        let runSeconds = fields["duration"].flatMap { self.duration($0.value, "workload.duration") }
        switch (fields["iterations"], fields["duration"]) {
        case (nil, nil): problem(node, "workload: expected 'iterations' (per virtual user) or 'duration'")
        case (.some, .some): problem(fields["duration"]!.key, "workload: 'iterations' and 'duration' exclude each other; give one")
        default: break
        }
        workload.iterations = iterations
        workload.durationSeconds = runSeconds
        if let entry = fields["start"], let text = string(entry.value, "workload.start"), text != "barrier" {
            problem(entry.value, "workload.start: found '\(text)'; expected barrier (every client starts at once)")
        }
        if let v = fields["pick"].flatMap({ choice($0.value, "workload.pick", PickMode.allCases) }) { workload.pick = v }
        if let v = fields["amount"].flatMap({ integer($0.value, "workload.amount", range: 1...1_000_000_000) }) { workload.amount = v }
        if let v = fields["items"].flatMap({ integer($0.value, "workload.items", range: 1...100) }) { workload.items = v }
        if let v = fields["quantity"].flatMap({ integer($0.value, "workload.quantity", range: 1...1_000_000) }) { workload.quantity = v }
        if let v = fields["item_order"].flatMap({ choice($0.value, "workload.item_order", ItemOrder.allCases) }) { workload.itemOrder = v }
        if let v = fields["think_ms"].flatMap({ number($0.value, "workload.think_ms", range: 0...60_000) }) { workload.thinkMilliseconds = v }
        if let v = fields["random_seed"].flatMap({ integer($0.value, "workload.random_seed", range: 0...Int.max) }) {
            workload.randomSeed = UInt64(v)
        }
        if let v = fields["pay_after_create"].flatMap({ boolean($0.value, "workload.pay_after_create") }) { workload.payAfterCreate = v }
        if let v = fields["idempotency_keys"].flatMap({ boolean($0.value, "workload.idempotency_keys") }) { workload.idempotencyKeys = v }
        if let entry = fields["idempotency_duplicates"],
            let v = integer(entry.value, "workload.idempotency_duplicates", range: 1...1_000)
        {
            workload.idempotencyDuplicates = v
            if v > 1 && !workload.idempotencyKeys {
                problem(entry.value, "workload.idempotency_duplicates: found \(v) without idempotency_keys: true; duplicates need keys")
            }
        }
        if let v = fields["row_lock_timeout_ms"].flatMap({ integer($0.value, "workload.row_lock_timeout_ms", range: 0...600_000) }) {
            workload.rowLockTimeoutMilliseconds = v
        }
        if let v = fields["timeout"].flatMap({ duration($0.value, "workload.timeout") }) { workload.timeoutSeconds = v }
        // `mix` is read with the scenario's case and strategy: see mix(_:caseName:strategy:).
        if let entry = fields["gateway"] {
            let gateway = entries(entry.value, known: ["failure_rate", "latency_ms"], section: "workload.gateway")
            if let v = gateway["failure_rate"].flatMap({ number($0.value, "workload.gateway.failure_rate", range: 0...1) }) {
                workload.gatewayFailureRate = v
            }
            if let latency = gateway["latency_ms"] {
                if case .sequence(let bounds) = latency.value {
                    let values = bounds.compactMap { number($0, "workload.gateway.latency_ms", range: 0...60_000) }
                    if values.count == 2 && values[0] <= values[1] {
                        workload.gatewayLatencyMilliseconds = values[0]...values[1]
                    } else if values.count == bounds.count {
                        problem(latency.value, "workload.gateway.latency_ms: expected [min, max] with min ≤ max")
                    }
                } else if let value = number(latency.value, "workload.gateway.latency_ms", range: 0...60_000) {
                    workload.gatewayLatencyMilliseconds = value...value
                }
            }
        }
        if let entry = fields["retry"] {
            let retry = entries(entry.value, known: ["max_attempts"], section: "workload.retry")
            workload.retryMaxAttempts = retry["max_attempts"].flatMap { integer($0.value, "workload.retry.max_attempts", range: 1...1_000) }
        }
        if let entry = fields["connections"] { workload.connections = connections(entry.value) }
        if let entry = fields["lock"] {
            let lock = entries(entry.value, known: ["lease_ms", "wait_ms"], section: "workload.lock")
            workload.lockLeaseMilliseconds = lock["lease_ms"].flatMap { integer($0.value, "workload.lock.lease_ms", range: 10...600_000) }
            workload.lockWaitMilliseconds = lock["wait_ms"].flatMap { integer($0.value, "workload.lock.wait_ms", range: 0...600_000) }
        }
        if let entry = fields["breaker"] {
            let breaker = entries(entry.value, known: ["failure_threshold", "cool_down_ms"], section: "workload.breaker")
            workload.breakerFailureThreshold = breaker["failure_threshold"].flatMap {
                integer($0.value, "workload.breaker.failure_threshold", range: 1...1_000_000)
            }
            workload.breakerCoolDownMilliseconds = breaker["cool_down_ms"].flatMap {
                integer($0.value, "workload.breaker.cool_down_ms", range: 0...600_000)
            }
        }
        return workload
    }

    /// `connections: 20` (both pools) or `{postgres: 20, redis: 64, wait: 5s}`.
    mutating func connections(_ node: Node) -> ConnectionsSpec? {
        let range = 1...10_000
        if case .scalar = node {
            return integer(node, "workload.connections", range: range).map { ConnectionsSpec(postgres: $0, redis: $0) }
        }
        let fields = entries(node, known: ["postgres", "redis", "wait"], section: "workload.connections")
        guard case .mapping = node else { return nil }
        guard let postgres = fields["postgres"].flatMap({ integer($0.value, "workload.connections.postgres", range: range) }) else {
            if fields["postgres"] == nil { problem(node, "workload.connections: missing key 'postgres' (the PostgreSQL pool's size)") }
            return nil
        }
        var spec = ConnectionsSpec(postgres: postgres, redis: postgres)
        if let entry = fields["redis"] {
            guard let redis = integer(entry.value, "workload.connections.redis", range: range) else { return nil }
            spec.redis = redis
        }
        if let entry = fields["wait"] {
            guard let wait = duration(entry.value, "workload.connections.wait") else { return nil }
            spec.waitSeconds = wait
        }
        return spec
    }

    /// `faults:`: a list of {kind, start, duration, interval, and the kind's parameters}.
    mutating func faultList(_ node: Node, scenario: Scenario) -> [FaultSpec] {
        if case .scalar = node, node.null != nil { return [] }
        guard case .sequence(let items) = node else {
            problem(node, "faults: found \(describe(node)); expected a list of faults such as - {kind: redis-down, start: 2s, duration: 3s}")
            return []
        }
        var faults: [FaultSpec] = []
        let leaseSeconds = Double(scenario.workload.lockLeaseMilliseconds ?? DistributedLockOptions.standard.leaseMilliseconds) / 1000
        for (position, item) in items.enumerated() {
            let field = "faults[\(position)]"
            guard case .mapping = item, let kindNode = mappingEntry(item, "kind")?.value else {
                problem(item, "\(field): expected a mapping with 'kind' (\(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            guard let kind = choice(kindNode, "\(field).kind", FaultKind.allCases) else { continue }
            let injector = kind.injector
            let parameterNames = injector.parameters.map(\.name)
            let fields = entries(item, known: ["kind", "start", "duration", "interval"] + parameterNames, section: "\(field) (\(kind.rawValue))")
            var spec = FaultSpec(kind: kind, startSeconds: 0, durationSeconds: nil, intervalSeconds: nil, parameters: [:])
            if let entry = fields["start"] {
                if case .scalar(let scalar) = entry.value, ["0", "0s", "0ms"].contains(scalar.string) {
                    spec.startSeconds = 0
                } else if let start = duration(entry.value, "\(field).start") {
                    spec.startSeconds = start
                }
            }
            spec.durationSeconds = fields["duration"].flatMap { duration($0.value, "\(field).duration") }
            spec.intervalSeconds = fields["interval"].flatMap { duration($0.value, "\(field).interval") }
            for parameter in injector.parameters {
                spec.parameters[parameter.name] = parameter.defaultValue
                if let entry = fields[parameter.name],
                    let value = number(entry.value, "\(field).\(parameter.name)", range: parameter.range)
                {
                    spec.parameters[parameter.name] = value
                }
            }
            switch injector.timing {
            case .window(let durationRequired):
                if durationRequired && fields["duration"] == nil {
                    problem(item, "\(field) (\(kind.rawValue)): missing key 'duration' (how long the fault lasts)")
                }
                if let entry = fields["interval"] {
                    problem(entry.key, "\(field) (\(kind.rawValue)): 'interval' applies to faults that strike repeatedly (pg-terminate); this one lasts from start for its duration")
                }
            case .strikes:
                if fields["interval"] != nil && fields["duration"] == nil {
                    problem(item, "\(field) (\(kind.rawValue)): 'interval' needs 'duration' (how long the strikes go on)")
                }
            }
            if kind == .redisPause, let seconds = spec.durationSeconds, seconds <= leaseSeconds {
                problem(fields["duration"]!.value, "\(field).duration: found \(formatNumber(seconds)) s; expected longer than the lock lease (\(formatNumber(leaseSeconds)) s, workload.lock.lease_ms): a shorter pause expires no lease")
            }
            if kind == .clientPause, spec.parameter("pause_ms") / 1000 <= leaseSeconds {
                problem(fields["pause_ms"]?.value ?? item, "\(field).pause_ms: found \(formatNumber(spec.parameter("pause_ms"))); expected longer than the lock lease (\(formatNumber(leaseSeconds * 1000)) ms, workload.lock.lease_ms): a shorter stall loses no lock")
            }
            if [.crashAfterDeduct, .compensationFailure, .gatewayFailure].contains(kind), !scenario.performs(.pay) {
                problem(kindNode, "\(field).kind: \(kind.rawValue) strikes payments, and the scenario runs none (pay, or create with pay_after_create)")
            }
            if let runSeconds = scenario.workload.durationSeconds, spec.startSeconds >= runSeconds {
                problem(fields["start"]?.value ?? item, "\(field).start: found \(formatNumber(spec.startSeconds)) s; the run lasts \(formatNumber(runSeconds)) s (workload.duration): it would never strike")
            }
            faults.append(spec)
        }
        if faults.filter({ $0.kind == .redisFailover }).count > 1 {
            problem(node, "faults: at most one redis-failover per scenario (there is one replica)")
        }
        return faults
    }

    mutating func thresholdList(_ node: Node, scenario: Scenario) -> [Threshold] {
        let cases = scenario.cases
        guard case .mapping(let mapping) = node else {
            problem(node, "thresholds: found \(describe(node)); expected a mapping of metric → list of expressions")
            return []
        }
        var thresholds: [Threshold] = []
        for (key, value) in mapping {
            guard let targetText = key.string else {
                problem(key, "thresholds: found \(describe(key)) as a key; expected a metric name")
                continue
            }
            let metricName: String
            let labels: [String: String]
            do {
                (metricName, labels) = try Threshold.parseTarget(targetText)
            } catch let error as ThresholdSyntaxError {
                problem(key, "thresholds: \(error.message)")
                continue
            } catch { continue }
            guard let metric = ThresholdMetric.all[metricName] else {
                if let reason = ThresholdMetric.unusable[metricName] {
                    problem(key, "thresholds: '\(metricName)' cannot have samples in a run: \(reason)")
                } else {
                    let names = ThresholdMetric.all.keys.sorted()
                    let hint = closest(metricName, in: names).map { " (did you mean '\($0)'?)" } ?? ""
                    problem(key, "thresholds: unknown metric '\(metricName)'\(hint); expected a catalog metric or one of throughput, latency, errors")
                }
                continue
            }
            guard !metric.cases.isDisjoint(with: cases) else {
                problem(key, "thresholds: '\(metricName)' cannot have samples in case \(scenario.caseLabel) (\(metric.help)); it applies to \(metric.cases.map(\.rawValue).sorted().joined(separator: ", "))")
                continue
            }
            if metricName == RunStatistics.fencedWritesRefused && !scenario.operations.contains(where: { $0.strategy == "redis-lock-fenced" }) {
                problem(key, "thresholds: '\(metricName)' cannot have samples: only redis-lock-fenced checks fencing tokens (this scenario runs \(scenario.strategyLabel))")
                continue
            }
            if metricName == "lockproof_pool_wait_seconds" && scenario.workload.connections == nil {
                problem(key, "thresholds: '\(metricName)' cannot have samples: the virtual users borrow from no pool (set workload.connections)")
                continue
            }
            var labelsValid = true
            for (label, labelValue) in labels {
                guard let allowed = metric.labels[label] else {
                    problem(key, "thresholds: '\(metricName)' has no label '\(label)'; it has \(metric.labels.keys.isEmpty ? "none" : metric.labels.keys.sorted().joined(separator: ", "))")
                    labelsValid = false
                    continue
                }
                if !allowed.contains(labelValue) {
                    problem(key, "thresholds: \(metricName){\(label)} found '\(labelValue)'; expected one of \(allowed.joined(separator: ", "))")
                    labelsValid = false
                }
            }
            if labelsValid, metricName.hasPrefix("lockproof_lock_") || metricName == "lockproof_distributed_lock_lost_total" {
                let taken = Set(scenario.locksTaken.map(\.rawValue))
                let wanted: Set<String> =
                    metricName == "lockproof_distributed_lock_lost_total" ? ["redis"] : labels["lock"].map { [$0] } ?? ["redis", "row"]
                if taken.isDisjoint(with: wanted) {
                    problem(key, "thresholds: '\(targetText)' cannot have samples: strategy \(scenario.strategyLabel) of \(scenario.caseLabel) takes \(taken.isEmpty ? "no lock" : "only \(taken.sorted().joined(separator: " and ")) locks")")
                    labelsValid = false
                }
            }
            guard labelsValid else { continue }
            guard case .sequence(let expressions) = value, !expressions.isEmpty else {
                problem(value, "thresholds.\(targetText): found \(describe(value)); expected a list of expressions such as [\"p(95) < 200ms\"]")
                continue
            }
            for expressionNode in expressions {
                guard let text = string(expressionNode, "thresholds.\(targetText)") else { continue }
                do {
                    let (aggregation, comparison, limit, unit) = try Threshold.parseExpression(text)
                    guard Threshold.aggregationFits(aggregation, metric.kind) else {
                        problem(expressionNode, "thresholds.\(targetText): '\(aggregation)' does not apply to a \(metric.kind.rawValue); expected \(Threshold.allowed(for: metric.kind))")
                        continue
                    }
                    try Threshold.checkUnit(unit, aggregation: aggregation, comparison: comparison, kind: metric.kind, limit: limit, text: text)
                    thresholds.append(
                        Threshold(metric: metricName, labels: labels, aggregation: aggregation, comparison: comparison, limit: limit, expression: text))
                } catch let error as ThresholdSyntaxError {
                    problem(expressionNode, "thresholds.\(targetText): \(error.message)")
                } catch {}
            }
        }
        return thresholds
    }
}

/// The known word nearest to a misspelling, if it is near enough to be a likely typo.
func closest(_ word: String, in candidates: [String]) -> String? {
    func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
    let best = candidates.map { ($0, distance(word, $0)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, word.count / 4) else { return nil }
    return best.0
}
