import Foundation

/// Where a Redis server is and how to log in: parsed from
/// `redis://[user[:password]@]host[:port][/db][?password=…]`.
///
/// The password never appears in a description or an error message; a parse error quotes nothing
/// of the URL, since any part of a malformed URL may be a piece of a password.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int
    /// ACL user (Redis 6+): logs in with `AUTH user password`. Without it, `AUTH password`.
    public var user: String?
    public var password: String?
    /// Bound on opening the connection and its handshake (AUTH, SELECT, PING), in seconds.
    public var connectTimeoutSeconds: Double

    public static let defaultConnectTimeoutSeconds = 5.0

    public init(
        host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, user: String? = nil, password: String? = nil,
        connectTimeoutSeconds: Double = RedisEndpoint.defaultConnectTimeoutSeconds
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    public init(url: String) throws {
        func invalid(_ why: String) -> RedisError { RedisError(kind: .protocolError, message: why) }
        if url.lowercased().hasPrefix("rediss://") {
            throw invalid("rediss:// (Redis over TLS) is not supported: use redis:// on a trusted network")
        }
        guard url.hasPrefix("redis://") else {
            throw invalid("the URL must start with redis:// (redis://[user[:password]@]host[:port][/db])")
        }
        var rest = Substring(url.dropFirst("redis://".count))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        // The query starts at the first '?'; credentials end at the last '@' before it, so that an
        // unencoded '/' or '@' in a password does not end it early.
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                user = String(credentials)
            }
            guard let decodedUser = Self.percentDecoded(user ?? ""), let decodedPassword = Self.percentDecoded(password ?? "")
            else { throw invalid("the user or password has a malformed %-escape") }
            user = decodedUser.isEmpty ? nil : decodedUser
            password = password == nil || decodedPassword.isEmpty ? nil : decodedPassword
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            if !dbText.isEmpty {
                guard dbText.allSatisfy({ $0.isASCII && $0.isNumber }), dbText.count <= 5, let db = Int(dbText) else {
                    throw invalid("the database (after the host's '/') must be a whole number such as 0")
                }
                database = db
            }
            rest = rest[..<slash]
        }
        for parameter in query.split(separator: "&") where !parameter.isEmpty {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            guard key == "password", parts.count == 2 else {
                let printable = key.count <= 32 && key.allSatisfy { $0.isASCII && ($0.isLetter || $0 == "_") }
                throw invalid(
                    "unknown query parameter\(printable ? " '\(key)'" : ""): the only one understood is password=")
            }
            guard let decoded = Self.percentDecoded(parts[1]) else {
                throw invalid("the password= query parameter has a malformed %-escape")
            }
            password = decoded.isEmpty ? password : decoded
        }
        var host = String(rest)
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("an IPv6 host has no closing ']'") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let tail = rest[rest.index(after: close)...]
            if !tail.isEmpty {
                guard tail.hasPrefix(":"), let value = Self.port(tail.dropFirst()) else {
                    throw invalid("the port must be a number 1–65535")
                }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let value = Self.port(rest[rest.index(after: colon)...]) else {
                throw invalid("the port must be a number 1–65535 (write ':' in a password as %3A)")
            }
            port = value
        }
        guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_:".contains($0)) }) else {
            throw invalid("the host name has characters a host name cannot have (percent-encode '@', '/', '?', ':' in a password)")
        }
        if host.isEmpty { host = "127.0.0.1" }
        self.init(host: host, port: port, database: database, user: user, password: password)
    }

    private static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
            (1...65535).contains(value)
        else { return nil }
        return value
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    private static func percentDecoded(_ text: String) -> String? { percentDecoded(Substring(text)) }

    /// `redis://user:***@host:port/db`: never the password. A lone userinfo (`redis://X@host`)
    /// is printed as `***@`: whoever writes one most likely meant a password.
    public var description: String {
        let credentials: String
        switch (user, password) {
        case (_?, nil): credentials = "***@"
        case (let user?, _?): credentials = "\(user):***@"
        case (nil, _?): credentials = ":***@"
        case (nil, nil): credentials = ""
        }
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "redis://\(credentials)\(hostText):\(port)/\(database)"
    }

    public var debugDescription: String { description }

    /// `message` without the password: for text hiredis or the server produced, which this
    /// program does not control. A password under 4 characters occurs in words by chance.
    func scrub(_ message: String) -> String {
        guard let password, password.count >= 4 else { return message }
        return message.components(separatedBy: password).joined(separator: "***")
    }
}
