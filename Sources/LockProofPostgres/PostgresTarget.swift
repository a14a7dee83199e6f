import CLibPQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL connection string as libpq itself reads it (`PQconninfoParse`), in either form
/// (`postgresql://…` URL or `key=value` conninfo), so that what is printed about a target never
/// depends on a parser of our own that could disagree with libpq about where a password ends.
///
/// Its description names host, port, database and user only; the password, in whichever form it
/// was written (`user:password@`, `?password=`, `password=…`, quoted), is never part of it.
public struct PostgresTarget: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let host: String?
    public let port: String?
    public let database: String?
    public let user: String?
    public let hasPassword: Bool
    /// Strings that must never appear in output: the password as libpq decoded it and as written.
    let secrets: [String]
    /// Every setting libpq read from the string, the password and the key passphrase left out.
    private let settingsWithoutSecrets: [String: String]
    /// The password as libpq decoded it (`user:password@`, `?password=`, `password=`).
    private let password: String?
    /// `sslpassword` (a client key's passphrase) was given: libpq reads it from no environment
    /// variable, so a child program could only get it on its command line.
    public let hasKeyPassphrase: Bool

    /// Parses `conninfo` with libpq. Throws a `.connectionFailed` error whose message quotes
    /// nothing of the string (libpq's own parse errors quote the offending token, which may be a
    /// piece of the password).
    public init(conninfo: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            let reason = errorMessage.map { String(cString: $0) } ?? "out of memory"
            if let errorMessage { PQfreemem(errorMessage) }
            throw PostgresError(
                kind: .connectionFailed, sqlState: nil,
                message: "libpq cannot parse it: \(withoutQuotedText(reason.trimmed))")
        }
        defer { PQconninfoFree(options) }
        var values: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        let password = values["password"].flatMap { $0.isEmpty ? nil : $0 }
        host = values["host"] ?? values["hostaddr"]
        port = values["port"]
        database = values["dbname"]
        user = values["user"]
        hasPassword = password != nil
        self.password = password
        hasKeyPassphrase = values["sslpassword"].map { !$0.isEmpty } ?? false
        settingsWithoutSecrets = values.filter { $0.key != "password" && $0.key != "sslpassword" }
        secrets = Self.secretForms(password: password, conninfo: conninfo)
        // A host name never contains '@': libpq took the first '@' of `user:pass@word@host` as the
        // end of the password, so the rest of the password sits in the host name.
        for name in [host, user, database].compactMap({ $0 }) where name.contains("@") {
            throw PostgresError(
                kind: .connectionFailed, sqlState: nil,
                message: "a host, user or database name contains '@'; write '@' in a password as %40")
        }
    }

    /// `postgresql://user:***@host:port/database`, from libpq's parse; never the password.
    public var description: String {
        var text = "postgresql://"
        if let user, !user.isEmpty { text += user + (hasPassword ? ":***" : "") + "@" } else if hasPassword { text += ":***@" }
        let hostText = host ?? "(default socket)"
        text += hostText.contains(":") && !hostText.contains(",") ? "[\(hostText)]" : hostText
        if let port, !port.isEmpty { text += ":" + port }
        if let database, !database.isEmpty { text += "/" + database }
        return text
    }

    public var debugDescription: String { description }

    /// For a child program that speaks libpq (pgbench): a `key='value'` conninfo with every
    /// setting but the password, for its command line (which every local user can read in
    /// /proc/PID/cmdline), and the password for its environment (`PGPASSWORD`, readable only by
    /// this user), where libpq takes it as the password's default.
    public var forChildProcess: (conninfo: String, environment: [String: String]) {
        let conninfo = settingsWithoutSecrets.sorted { $0.key < $1.key }.map { key, value in
            "\(key)='\(value.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'"))'"
        }.joined(separator: " ")
        return (conninfo, password.map { ["PGPASSWORD": $0] } ?? [:])
    }

    /// `message` with every form of the password removed: for any text that libpq or the server
    /// produced while connecting, which this program does not control.
    public func scrub(_ message: String) -> String {
        var text = message
        for secret in secrets where text.contains(secret) { text = text.replacingAll(secret, with: "***") }
        return text
    }

    /// The password as decoded, as written in the string (percent-encoded, quoted, escaped), so
    /// that a message echoing any of them can be cleaned. Shorter than 4 characters, a password
    /// occurs in ordinary words by chance; it is then not looked for.
    private static func secretForms(password: String?, conninfo: String) -> [String] {
        guard let password else { return [] }
        var forms = [password]
        if let encoded = percentEncoded(password) { forms.append(encoded) }
        forms.append(password.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'"))
        return Array(Set(forms)).filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    private static func percentEncoded(_ text: String) -> String? {
        var encoded = ""
        for byte in text.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) {
                encoded.append(Character(Unicode.Scalar(byte)))
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded == text ? nil : encoded
    }
}

/// What may be printed of a PostgreSQL connection string: libpq's own parse of it, without the
/// password (see `PostgresTarget`), or a note that it cannot be parsed.
public func redactedURL(_ conninfo: String) -> String {
    (try? PostgresTarget(conninfo: conninfo))?.description ?? "(a PostgreSQL connection string libpq cannot parse)"
}

/// libpq's parse errors quote the token they stumbled on (`invalid percent-encoded token:
/// "pa%zzss"`), which may be a piece of a password: drop whatever is between double quotes.
func withoutQuotedText(_ message: String) -> String {
    var result = ""
    var quoted = false
    for character in message {
        if character == "\"" {
            if !quoted { result += "\"…\"" }
            quoted.toggle()
        } else if !quoted {
            result.append(character)
        }
    }
    return result
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }

    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
