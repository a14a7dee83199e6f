import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// The real servers the tests talk to: `LOCKPROOF_DATABASE_URL` / `LOCKPROOF_REDIS_URL`, or the
/// throwaway ones `make test` starts.
public enum TestServers {
    public static let configuration: ServerConfiguration = {
        do { return try ServerConfiguration.fromEnvironment() } catch { fatalError("bad server configuration: \(error)") }
    }()

    nonisolated(unsafe) private static var sharedServices: SharedServices?
    private static let sharedLock = NSLock()

    /// One lock notifier and lease renewer for the whole test process.
    public static var shared: SharedServices {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let sharedServices { return sharedServices }
        do {
            let services = try SharedServices(configuration: configuration)
            sharedServices = services
            return services
        } catch {
            fatalError("cannot reach Redis at \(configuration.redis): \(error). Run the tests with `make test`.")
        }
    }

    public static func database() throws -> PostgresConnection {
        try configuration.openDatabase()
    }

    public static func redis(commandTimeout: Double = 5) throws -> RedisConnection {
        try RedisConnection(endpoint: configuration.redis, commandTimeout: commandTimeout)
    }

    /// Empties every table and the Redis database: each test starts clean.
    public static func reset() throws {
        let db = try database()
        try Schema.reset(db)
        try redis().checked(["FLUSHDB"])
    }

    public static func client(
        events: any EventSink = NoEventSink(), settings: CommerceSettings = CommerceSettings(),
        gateway: any PaymentGateway = AlwaysApprovingGateway()
    ) throws -> CommerceClient {
        try CommerceClient(configuration: configuration, shared: shared, events: events, settings: settings, gateway: gateway)
    }
}

/// Collects every event, for assertions on what the core recorded.
public final class RecordingEventSink: EventSink, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [(event: LockProofEvent, caseName: String)] = []
    public init() {}

    public func record(_ event: LockProofEvent, caseName: String) {
        lock.lock()
        recorded.append((event, caseName))
        lock.unlock()
    }

    public var events: [LockProofEvent] {
        lock.lock()
        defer { lock.unlock() }
        return recorded.map(\.event)
    }

    public func count(where predicate: (LockProofEvent) -> Bool) -> Int { events.filter(predicate).count }
}
