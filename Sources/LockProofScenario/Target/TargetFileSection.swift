import Foundation
import Yams

// The target file's keys: name, instances, database, http, the sections and what they need of each other.

extension TargetReader {
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
}
