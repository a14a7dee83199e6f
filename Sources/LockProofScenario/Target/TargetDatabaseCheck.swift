import Foundation
import LockProofPostgres

extension Target {
    /// Checks the target's SQL against its database before a run writes anything: every `state`
    /// query runs (returning no row) and must give its kind's columns by name; every `seed`
    /// statement is prepared (so a misspelled table or column, or a wrong parameter type, is found
    /// before the tables are emptied) and deallocated. `reset` is not run here: it empties tables.
    /// Returns the problems, each naming the file, the line and the section; empty when all is well.
    public func checkDatabase(_ db: PostgresConnection) -> [String] {
        var problems: [String] = []
        for kind in StateKind.allCases {
            guard let statement = state[kind] else { continue }
            let place = "\(file):\(statement.line): state.\(kind.rawValue)"
            do {
                // On lines of its own: a query may end in a `-- comment` (or a `;`, dropped).
                var query = statement.sql.trimmingCharacters(in: .whitespacesAndNewlines)
                while query.hasSuffix(";") { query = String(query.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
                let result = try db.query("SELECT * FROM (\n\(query)\n) AS lockproof_state LIMIT 0")
                let columns = (0..<result.columnCount).map(result.columnName)
                let missing = kind.columns.filter { !columns.contains($0) }
                if !missing.isEmpty {
                    problems.append(
                        "\(place): the query returns the columns \(columns.joined(separator: ", ")); expected \(kind.columns.joined(separator: ", ")) (missing \(missing.joined(separator: ", ")))")
                }
            } catch {
                problems.append("\(place): the database refused the query: \(Self.firstLine(error))")
            }
        }
        let seeds: [(String, TargetStatement)] =
            SeedKind.allCases.flatMap { kind in (seed[kind] ?? []).map { ("seed.\(kind.rawValue)", $0) } }
            + seedAfter.map { ("seed.after", $0) }
        for (index, (section, statement)) in seeds.enumerated() {
            let name = "lockproof_target_check_\(index)"
            do {
                _ = try db.execute("PREPARE \(name) AS \(statement.sql)")
                _ = try db.execute("DEALLOCATE \(name)")
            } catch {
                problems.append("\(file):\(statement.line): \(section): the database refused the statement: \(Self.firstLine(error))")
            }
        }
        return problems
    }

    private static func firstLine(_ error: any Error) -> String {
        let text = (error as? PostgresError)?.message ?? "\(error)"
        return String(text.split(separator: "\n").first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
