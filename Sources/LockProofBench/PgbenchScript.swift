import Foundation
import LockProofPostgres
import LockProofScenario

/// A pgbench custom script derived from the statements one LockProof operation really sent: the
/// same SQL text in the same order (BEGIN, every SELECT, UPDATE and ledger INSERT, COMMIT), with
/// each bound parameter mapped back to where its value came from, so pgbench binds values of the
/// same kind (`-M prepared` turns every `:variable` into a bound parameter).
public struct PgbenchScript: Sendable, Equatable {
    /// The script text for `pgbench -f`.
    public let text: String
    /// Text constants, passed as `-D name=value` (pgbench's `\set` is numeric only).
    public let definitions: [String: String]
    /// The SQL statements, in order, exactly as traced.
    public let statements: [String]
    /// How each parameter was mapped, for the report (`$2 of statement 3 ← :r1_balance + :amount`).
    public let mappings: [String]
}

/// Where the ids an operation works on come from in pgbench, so that the ceiling's transactions
/// pick rows as the LockProof clients of the same cell do.
public struct PgbenchPicks: Sendable, Equatable {
    /// Input name (`user`, `order`, `item1_product`, …) → a pgbench expression.
    public var expressions: [String: String]

    /// The picks of a scenario's workload: `same` is always the first id, `per-client` walks the
    /// pool by slot (client + clients × iteration, as the runner does; `per-operation` too), `random` draws uniformly.
    /// The runner seeds ids from 1 after `TRUNCATE … RESTART IDENTITY`, so a pool is 1 … count.
    public static func of(_ scenario: Scenario) -> PgbenchPicks {
        let workload = scenario.workload
        func pick(_ pool: Int) -> String {
            switch workload.pick {
            case .same: return "1"
            // The slot of the runner (client + clients × iteration); per-client counts occurrences
            // of one operation, which is the slot when the workload has one operation.
            case .perOperation, .perClient: return "1 + ((:client_id + :clients * :n) % \(pool))"
            case .random: return "random(1, \(pool))"
            }
        }
        var expressions = [
            "user": pick(scenario.seed.users),
            "product": pick(scenario.seed.products),
            "order": pick(max(1, scenario.seed.orders)),
            "coupon": "1",
            "amount": String(workload.amount),
            "quantity": String(workload.quantity),
            "base_product": pick(scenario.seed.products),
        ]
        for item in 0..<workload.items {
            expressions["item\(item)_product"] = "1 + ((:base_product - 1 + \(item)) % \(scenario.seed.products))"
            expressions["item\(item)_quantity"] = String(workload.quantity)
        }
        return PgbenchPicks(expressions: expressions)
    }
}

public struct PgbenchScriptError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension PgbenchScript {
    /// Builds the script from a trace. `inputs` are the operation's arguments as the history
    /// recorded them (`user` → 4821, `item0_product` → 17, …); `picks` says how pgbench chooses
    /// each of them per transaction.
    ///
    /// A parameter maps, in this order of preference, to: an input; a column of an earlier
    /// one-row result (kept with `\gset`); that column plus, minus or times an input or another
    /// column (a `\set` expression); its negation; else a constant. The trace uses distinctive
    /// values (see `BenchCase`) so that these matches are not coincidences.
    public static func derive(
        from trace: [PostgresStatementTrace], inputs: [String: Int], picks: PgbenchPicks
    ) throws -> PgbenchScript {
        // Inputs first, so every statement can use them; `n` counts this client's transactions.
        var usedInputs: [String] = []
        let inputOrder = inputs.keys.sorted()
        var definitions: [String: String] = [:]
        var mappings: [String] = []
        var body: [String] = []
        // Variables known so far: name → traced value.
        var known: [(name: String, value: Int)] = inputOrder.map { ($0, inputs[$0]!) }
        var gsetNeeded = Set<String>()
        var statementLines: [[String]] = []
        var constantNumber = 0
        var expressionNumber = 0

        // First pass: map parameters; remember which results must be kept.
        var columnsOf: [Int: [(name: String, value: Int)]] = [:]
        for (index, statement) in trace.enumerated() {
            var prelude: [String] = []
            var sql = statement.sql
            var replacements: [String] = []
            for (position, parameter) in statement.parameters.enumerated() {
                guard let text = parameter else {
                    throw PgbenchScriptError(message: "statement \(index + 1) binds NULL, which a pgbench script cannot")
                }
                let reference: String
                if let value = Int(text) {
                    // Equal values can come from different sources (order 17 of user 17): the
                    // column the parameter is compared with or written to decides between them.
                    let hint = parameterHint(statement.sql, position + 1)
                    let candidates = known.filter { $0.value == value }
                    let hinted = hint.flatMap { hint in candidates.last { hintMatches($0.name, hint) } }
                    let chosen = hinted ?? candidates.first { inputs[$0.name] != nil } ?? candidates.last
                    if let chosen, inputs[chosen.name] != nil {
                        reference = ":\(chosen.name)"
                        if !usedInputs.contains(chosen.name) { usedInputs.append(chosen.name) }
                    } else if let chosen {
                        reference = ":\(chosen.name)"
                        markUsed(chosen.name, &gsetNeeded)
                    } else if let expression = arithmetic(value, known) {
                        expressionNumber += 1
                        let name = "e\(expressionNumber)"
                        prelude.append("\\set \(name) \(expression.text)")
                        for used in expression.uses {
                            markUsed(used, &gsetNeeded)
                            if inputs[used] != nil, !usedInputs.contains(used) { usedInputs.append(used) }
                        }
                        reference = ":\(name)"
                    } else {
                        constantNumber += 1
                        let name = "k\(constantNumber)"
                        prelude.append("\\set \(name) \(value)")
                        reference = ":\(name)"
                    }
                } else {
                    constantNumber += 1
                    let name = "k\(constantNumber)"
                    definitions[name] = text
                    reference = ":\(name)"
                }
                replacements.append(reference)
                mappings.append("statement \(index + 1) $\(position + 1) = \(text) ← \(reference)")
            }
            // Replace $10 before $1.
            for position in stride(from: replacements.count, through: 1, by: -1) {
                sql = sql.replacingOccurrences(of: "$\(position)", with: replacements[position - 1])
            }
            statementLines.append(prelude + [oneLine(sql)])
            if statement.rowCount == 1 {
                var columns: [(name: String, value: Int)] = []
                for (column, name) in statement.columns.enumerated() {
                    if let text = statement.firstRow[column], let value = Int(text), isIdentifier(name) {
                        columns.append(("r\(index + 1)_\(name)", value))
                    }
                }
                columnsOf[index] = columns
                known += columns
            }
        }
        // Second pass: keep (\gset) the one-row results that later statements use.
        for (index, statementText) in statementLines.enumerated() {
            body += statementText
            if let columns = columnsOf[index], columns.contains(where: { gsetNeeded.contains($0.name) }) {
                body.append("\\gset r\(index + 1)_")
            }
        }
        // Re-derive the inputs per transaction; `base_product` anchors the items of an order.
        var header: [String] = ["-- Derived from the statements LockProof sent for one operation; do not edit by hand."]
        if usedInputs.contains(where: { $0.hasPrefix("item") }) { usedInputs.insert("base_product", at: 0) }
        for name in usedInputs {
            guard let expression = picks.expressions[name] else {
                throw PgbenchScriptError(message: "no pgbench pick for the operation's input '\(name)'")
            }
            header.append("\\set \(name) \(expression)")
        }
        header.append("\\set n :n + 1")
        let lines = header + body
        return PgbenchScript(
            text: lines.joined(separator: "\n") + "\n", definitions: definitions, statements: trace.map(\.sql),
            mappings: mappings)
    }

    private static func markUsed(_ name: String, _ needed: inout Set<String>) { needed.insert(name) }

    /// `a + b`, `a - b`, `a * b` or `-a` over known values that gives `value`.
    private static func arithmetic(_ value: Int, _ known: [(name: String, value: Int)])
        -> (text: String, uses: [String])?
    {
        for a in known.reversed() {
            if a.value != 0, -a.value == value { return ("0 - :\(a.name)", [a.name]) }
            for b in known.reversed() where b.name != a.name {
                if a.value + b.value == value { return (":\(a.name) + :\(b.name)", [a.name, b.name]) }
                if a.value - b.value == value { return (":\(a.name) - :\(b.name)", [a.name, b.name]) }
                if a.value * b.value == value, a.value > 1, b.value > 1 {
                    return (":\(a.name) * :\(b.name)", [a.name, b.name])
                }
            }
            if a.value + 1 == value { return (":\(a.name) + 1", [a.name]) }
        }
        return nil
    }

    /// What a parameter stands for, from the SQL around it: the column it is compared with
    /// (`user_id = $2` → user, `… FROM users WHERE id = $1` → user, `version = $3` → version) or,
    /// in an INSERT, the column at its position in the column list.
    static func parameterHint(_ sql: String, _ number: Int) -> String? {
        let text = sql.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\t" }).joined(separator: " ")
        var column: String?
        if let match = text.range(of: "([A-Za-z_]+) ?(=|<|>|<=|>=) ?\\$\(number)(?![0-9])", options: .regularExpression) {
            column = String(text[match].prefix { $0.isLetter || $0 == "_" })
        } else if let columns = text.range(of: "INSERT INTO [a-z_]+ ?\\(([^)]*)\\) ?VALUES ?\\(([^)]*)\\)", options: .regularExpression) {
            let inside = text[columns]
            let parts = inside.split(separator: "(").dropFirst().map { $0.split(separator: ")").first.map(String.init) ?? "" }
            if parts.count == 2 {
                let names = parts[0].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let values = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if let index = values.firstIndex(of: "$\(number)"), index < names.count { column = names[index] }
            }
        }
        guard let column else { return nil }
        if column == "id" {
            let table = text.range(of: "(FROM|UPDATE|INTO) [a-z_]+", options: .regularExpression)
                .map { String(text[$0].split(separator: " ")[1]) }
            switch table {
            case "users": return "user"
            case "products": return "product"
            case "orders": return "order"
            case "coupons": return "coupon"
            default: return nil
            }
        }
        if column.hasSuffix("_id") { return String(column.dropLast(3)) }
        return column
    }

    private static func hintMatches(_ name: String, _ hint: String) -> Bool {
        name == hint || name.hasSuffix("_\(hint)") || name.hasSuffix("_\(hint)_id")
            || (name.hasPrefix("item") && name.hasSuffix("_\(hint)"))
    }

    private static func isIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !name.first!.isNumber
    }

    /// pgbench reads one statement per line (up to the semicolon); the core's SQL spans lines.
    private static func oneLine(_ sql: String) -> String {
        let words = sql.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\t" })
        return words.joined(separator: " ") + ";"
    }
}

extension PgbenchScript {
    /// The SQL of a script, one statement per entry, with every `:variable` written as `?`.
    public static func sqlShapes(ofScript text: String) -> [String] {
        text.split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("\\") && !$0.hasPrefix("--") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { line in
                let statement = line.hasSuffix(";") ? String(line.dropLast()) : line
                return statement.replacingOccurrences(
                    of: "(?<![:A-Za-z0-9_]):[A-Za-z_][A-Za-z0-9_]*", with: "?", options: .regularExpression)
            }
    }

    /// A traced statement with every `$n` written as `?` and its whitespace collapsed.
    public static func sqlShape(ofTraced sql: String) -> String {
        let collapsed = sql.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\t" }).joined(separator: " ")
        return collapsed.replacingOccurrences(of: "\\$[0-9]+", with: "?", options: .regularExpression)
    }

    /// Where a script differs from the statements LockProof sent: empty when it runs exactly them,
    /// in the same order. Guards against a script drifting from the core.
    public static func differences(script text: String, trace: [PostgresStatementTrace]) -> [String] {
        let scripted = sqlShapes(ofScript: text)
        let sent = trace.map { sqlShape(ofTraced: $0.sql) }
        var problems: [String] = []
        for index in 0..<max(scripted.count, sent.count) {
            let left = index < scripted.count ? scripted[index] : "(nothing)"
            let right = index < sent.count ? sent[index] : "(nothing)"
            if left != right { problems.append("statement \(index + 1): script runs '\(left)', LockProof sent '\(right)'") }
        }
        return problems
    }
}
