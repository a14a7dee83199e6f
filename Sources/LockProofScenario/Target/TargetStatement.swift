import Foundation

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
