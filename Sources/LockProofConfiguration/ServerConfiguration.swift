import Foundation
import LockProofPostgres
import LockProofRedis

/// Where the servers are: `LOCKPROOF_DATABASE_URL` and `LOCKPROOF_REDIS_URL`, and how long a
/// connection attempt to either may take (`LOCKPROOF_CONNECT_TIMEOUT`, seconds, default 5).
public struct ServerConfiguration: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let defaultDatabaseURL = "postgresql://lockproof@127.0.0.1:25432/lockproof"
    public static let defaultRedisURL = "redis://127.0.0.1:26379/0"
    public static let defaultConnectTimeoutSeconds = 5

    public var databaseURL: String
    public var redis: RedisEndpoint
    /// Bounds every connection attempt (PostgreSQL's connect_timeout, Redis' connect and
    /// handshake), so that a server that accepts and never answers cannot hang a run.
    public var connectTimeoutSeconds: Int {
        didSet { redis.connectTimeoutSeconds = Double(connectTimeoutSeconds) }
    }

    public init(databaseURL: String, redisURL: String, connectTimeoutSeconds: Int = defaultConnectTimeoutSeconds) throws {
        self.databaseURL = databaseURL
        self.connectTimeoutSeconds = connectTimeoutSeconds
        do {
            _ = try PostgresTarget(conninfo: databaseURL)
        } catch let error as PostgresError {
            throw ConfigurationError(message: "LOCKPROOF_DATABASE_URL: \(error.message)")
        }
        do {
            self.redis = try RedisEndpoint(url: redisURL)
            self.redis.connectTimeoutSeconds = Double(connectTimeoutSeconds)
        } catch let error as RedisError {
            throw ConfigurationError(message: "LOCKPROOF_REDIS_URL: \(error.message)")
        }
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> ServerConfiguration
    {
        var timeout = defaultConnectTimeoutSeconds
        if let text = environment["LOCKPROOF_CONNECT_TIMEOUT"], !text.isEmpty {
            guard let value = connectTimeout(parsing: text) else {
                throw ConfigurationError(
                    message: "LOCKPROOF_CONNECT_TIMEOUT: '\(text.prefix(20))' is not a whole number of seconds 1–3600")
            }
            timeout = value
        }
        return try ServerConfiguration(
            databaseURL: environment["LOCKPROOF_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultDatabaseURL,
            redisURL: environment["LOCKPROOF_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultRedisURL,
            connectTimeoutSeconds: timeout)
    }

    /// A connect timeout as written by a user: whole seconds, 1–3600.
    public static func connectTimeout(parsing text: String) -> Int? {
        guard text.count <= 4, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text), (1...3600).contains(value)
        else { return nil }
        return value
    }

    /// Opens a PostgreSQL session on the configured database, bounded by the connect timeout.
    public func openDatabase() throws -> PostgresConnection {
        try PostgresConnection(databaseURL, connectTimeoutSeconds: connectTimeoutSeconds)
    }

    /// Printable: no password.
    public var description: String { "\(redactedURL(databaseURL)) and \(redis)" }
    public var debugDescription: String { description }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
