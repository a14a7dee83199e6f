import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking
import LockProofPostgres
import LockProofRedis
import Synchronization

/// The real servers the tests talk to: `LOCKPROOF_DATABASE_URL` / `LOCKPROOF_REDIS_URL`, or the
/// throwaway ones `make test` starts.
///
/// The tests use a database of their own, `LOCKPROOF_TEST_DATABASE_URL` or else the configured
/// database's name + `_tests` on the same server (created when missing), so that `make test` and
/// a `make verify` or `lockproof run` on the configured database never disturb each other: the
/// tests empty tables directly (`reset`) between the runs that hold the run lock. One test process
/// at a time holds the test database (an advisory lock of its own, for the whole process; a second
/// one stops with a message).
public enum TestServers {
    public static let configuration: ServerConfiguration = {
        do {
            var configuration = try ServerConfiguration.fromEnvironment()
            requireServers(configuration)
            configuration.databaseURL = try testDatabaseURL(configuration)
            holdTestDatabase(configuration)
            return configuration
        } catch {
            stop("bad server configuration: \(error)")
        }
    }()

    /// Ends the test process at once with one line on stderr: what is missing and how to start the
    /// servers. Without them every later test would fail the same way (or, before, crash with a
    /// `fatalError` and its backtrace).
    static func stop(_ problem: String, howToStart: Bool = true) -> Never {
        let oneLine = problem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        FileHandle.standardError.write(Data(
            "lockproof tests: \(oneLine)\(howToStart ? ". Start throwaway servers with `make test` or `scripts/with-services.sh swift test`, or set LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL to servers of your own" : "")\n".utf8))
        exit(EXIT_FAILURE)
    }

    /// Both servers answer, or the process stops (`stop`) before the first test that needs them runs.
    private static func requireServers(_ configuration: ServerConfiguration) {
        do {
            _ = try configuration.openDatabase()
        } catch {
            stop("PostgreSQL does not answer at \(redactedURL(configuration.databaseURL)) (\(error))")
        }
        do {
            _ = try RedisConnection(endpoint: configuration.redis, commandTimeout: 5)
        } catch {
            stop("Redis does not answer at \(configuration.redis) (\(error))")
        }
    }

    /// The process-long session holding the test database.
    nonisolated(unsafe) private static var testDatabaseHolder: PostgresConnection?

    /// `LOCKPROOF_TEST_DATABASE_URL`, or the configured URL with the database `NAME_tests`,
    /// created on the same server when it does not exist (LockProof then creates its schema and
    /// marker there at the first reset).
    static func testDatabaseURL(_ configuration: ServerConfiguration) throws -> String {
        if let url = ProcessInfo.processInfo.environment["LOCKPROOF_TEST_DATABASE_URL"], !url.isEmpty { return url }
        let admin = try configuration.openDatabase()
        let name = (try admin.query("SELECT current_database()").string(0, 0) ?? "lockproof") + "_tests"
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rowCount == 0 {
            let create = try admin.query("SELECT format('CREATE DATABASE %I', $1::text)", [name]).string(0, 0)!
            do {
                try admin.execute(create)
            } catch let error as PostgresError where error.sqlState == "42P04" || error.sqlState == "23505" {
                // Created by another process at the same moment.
            }
        }
        return try withDatabase(configuration.databaseURL, name)
    }

    /// A database beside the tests' own (`<tests' database>_<suffix>`, created if missing) with
    /// LockProof's schema and nothing in it: a target's database, which is not LockProof's. Its URL.
    public static func siblingDatabase(_ suffix: String) throws -> String {
        let admin = try database()
        let name = (try admin.query("SELECT current_database()").string(0, 0) ?? "lockproof") + "_" + suffix
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rowCount == 0 {
            try admin.execute(try admin.query("SELECT format('CREATE DATABASE %I', $1::text)", [name]).string(0, 0)!)
        }
        var sibling = configuration
        sibling.databaseURL = try withDatabase(configuration.databaseURL, name)
        try Schema.reset(try sibling.openDatabase())
        return sibling.databaseURL
    }

    /// `url` naming database `name` instead (a URL or a key=value conninfo string).
    public static func withDatabase(_ url: String, _ name: String) throws -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard var components = URLComponents(string: url) else { throw ConfigurationError(message: "cannot parse the database URL") }
            components.percentEncodedPath = "/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
            return components.string!
        }
        return url + " dbname='\(name.replacingOccurrences(of: "'", with: "\\'"))'"
    }

    private static func holdTestDatabase(_ configuration: ServerConfiguration) {
        do {
            let session = try configuration.openDatabase()
            let held = try session.query("SELECT pg_try_advisory_lock($1::int4, $2::int4)", [0x4C50_5246, 2]).bool(0, 0)
            guard held == true else {
                stop("another test process is using the test database \(redactedURL(configuration.databaseURL)); wait for it, or set LOCKPROOF_TEST_DATABASE_URL to another database", howToStart: false)
            }
            testDatabaseHolder = session
        } catch {
            stop("cannot reach the test database \(redactedURL(configuration.databaseURL)): \(error)")
        }
    }

    private static let sharedServices = Mutex<SharedServices?>(nil)

    /// One lock notifier and lease renewer for the whole test process.
    public static var shared: SharedServices {
        sharedServices.withLock { stored in
            if let stored { return stored }
            do {
                let services = try SharedServices(configuration: configuration)
                stored = services
                return services
            } catch {
                stop("cannot reach Redis at \(configuration.redis): \(error)")
            }
        }
    }

    /// The test servers' URLs as a launched `lockproof` reads them (LOCKPROOF_DATABASE_URL, LOCKPROOF_REDIS_URL).
    public static var binaryEnvironment: [String: String] {
        let redis = configuration.redis
        return ["LOCKPROOF_DATABASE_URL": configuration.databaseURL, "LOCKPROOF_REDIS_URL": "redis://\(redis.host):\(redis.port)/\(redis.database)"]
    }

    public static func database() throws -> PostgresConnection {
        try configuration.openDatabase()
    }

    public static func redis(commandTimeout: Double = 5) throws -> RedisConnection {
        try RedisConnection(endpoint: configuration.redis, commandTimeout: commandTimeout)
    }

    /// Empties every table and the Redis database: each test starts clean. The Redis database is
    /// the configured one (fault tests stop and fail over the whole server anyway): one a LockProof
    /// run of another process holds (`lockproof:run-owner`, e.g. a `make verify` on the same
    /// servers) is not flushed under it; the test fails naming that run.
    public static func reset() throws {
        let db = try database()
        try Schema.reset(db)
        let redis = try redis()
        if let owner = try redis.checked(["GET", DatabaseClaim.redisKey]).text, !owner.contains(" pid=\(getpid()) ") {
            throw ConfigurationError(
                message: "the Redis database \(configuration.redis) is held by another LockProof run (\(owner.components(separatedBy: " token=")[0])); the tests would clear its lock keys. Run them when it is done, or on other servers.")
        }
        try redis.checked(["FLUSHDB"])
    }

    public static func client(
        events: any EventSink = NoEventSink(), settings: CommerceSettings = CommerceSettings(),
        gateway: any PaymentGateway = AlwaysApprovingGateway()
    ) throws -> CommerceClient {
        try CommerceClient(configuration: configuration, shared: shared, events: events, settings: settings, gateway: gateway)
    }
}

/// Collects every event, for assertions on what the core recorded.
public final class RecordingEventSink: EventSink, Sendable {
    private let recorded = Mutex<[(event: LockProofEvent, caseName: String)]>([])
    public init() {}

    public func record(_ event: LockProofEvent, caseName: String) {
        recorded.withLock { $0.append((event, caseName)) }
    }

    public var events: [LockProofEvent] {
        recorded.withLock { $0.map(\.event) }
    }

    public func count(where predicate: (LockProofEvent) -> Bool) -> Int { events.filter(predicate).count }
}
