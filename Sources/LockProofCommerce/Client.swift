import Foundation
import LockProofConfiguration
import LockProofLocking
import LockProofPostgres
import LockProofRedis

/// What a process shares between its clients: the lock release subscriber and the lease watchdog,
/// each with its own thread and connection.
public final class SharedServices: @unchecked Sendable {
    public let configuration: ServerConfiguration
    public let notifier: LockReleaseNotifier
    public let renewer: LeaseRenewer
    /// The circuit breaker around Redis every client of the process shares.
    public let breaker: CircuitBreaker
    /// Where the Redis primary is (a failover moves it).
    public let route: RedisRoute
    /// Who holds which Redis lock now (two holders of one lock show up here).
    public let holders = LockHolderRegistry()

    public init(configuration: ServerConfiguration, breaker: CircuitBreakerOptions = .standard) throws {
        self.configuration = configuration
        route = RedisRoute(configuration.redis)
        notifier = try LockReleaseNotifier(endpoint: configuration.redis, route: route)
        renewer = try LeaseRenewer(endpoint: configuration.redis, route: route)
        self.breaker = CircuitBreaker(options: breaker)
    }

    public func stop() {
        notifier.stop()
        renewer.stop()
    }
}

/// Tunables shared by every case.
public struct CommerceSettings: Sendable, Equatable {
    public var lock: DistributedLockOptions = .standard
    public var retry: RetryPolicy = .seed
    /// `lock_timeout` for row locks (0 waits forever).
    public var rowLockTimeoutMilliseconds: Int = 5_000
    /// Application think time between reading a row and writing it back, as an ORM spends it. The
    /// same for every strategy; widening it makes races that a strategy lets through show sooner.
    public var processingDelaySeconds: Double = 0
    /// How long a client waits for one Redis reply before counting Redis as failed (breaker).
    public var redisCommandTimeoutSeconds: Double = 2
    public init() {}
}

/// Where injected faults strike. Empty by default; the faults issue fills these in.
public struct FaultHooks: Sendable {
    /// Called inside the compensation transaction, before it commits; throwing makes it fail.
    public var beforeCompensationCommit: (@Sendable (_ orderId: Int) throws -> Void)?
    /// Called while a distributed lock is held, before the transaction starts.
    public var whileHoldingLock: (@Sendable (_ key: String) throws -> Void)?
    /// Called in the think time between a read and its write (`client-pause` stalls here).
    public var duringThink: (@Sendable () throws -> Void)?
    /// Called after a payment's deduction committed, before the gateway is asked.
    public var afterDeduction: (@Sendable (_ orderId: Int) throws -> Void)?
    public init() {}
}

/// A fault killed the client process at this point (`crash-after-deduct`): what it had committed
/// stays, what it had not done never happens. Its operation's outcome is unknown.
public struct ClientCrashed: Error, CustomStringConvertible, Sendable {
    public let point: String
    public init(point: String) { self.point = point }
    public var description: String { "client crashed \(point)" }
}

/// The connections virtual users share when `workload.connections` is set: a bounded pool of
/// PostgreSQL sessions and one of Redis connections, per process (per instance).
public final class ClientPools: @unchecked Sendable {
    public let postgres: ConnectionPool<PostgresConnection>
    public let redis: ConnectionPool<RedisConnection>

    public init(
        configuration: ServerConfiguration, settings: CommerceSettings, postgres: Int, redis: Int, waitSeconds: Double
    ) {
        self.postgres = ConnectionPool(kind: .postgres, size: postgres, waitSeconds: waitSeconds) {
            let connection = try PostgresConnection(
                CommerceClient.clientURL(configuration.databaseURL), connectTimeoutSeconds: configuration.connectTimeoutSeconds)
            try connection.setLockTimeout(milliseconds: settings.rowLockTimeoutMilliseconds)
            return connection
        }
        self.redis = ConnectionPool(kind: .redis, size: redis, waitSeconds: waitSeconds) {
            try RedisConnection(
                endpoint: configuration.redis, commandTimeout: settings.redisCommandTimeoutSeconds,
                clientName: CommerceClient.applicationName)
        }
    }

    public func close() {
        postgres.close()
        redis.close()
    }
}

/// One virtual client, used from one thread: its own PostgreSQL session and Redis connection, or,
/// with `pools`, connections borrowed from pools shared with the other clients.
///
/// Pooled, a transaction borrows a session for its own length (`transaction`, `withDatabase`), as
/// an application's pool lends one per transaction; `database` borrows one until
/// `releaseConnections()`. A Redis connection is borrowed for a distributed lock's whole hold. So a
/// client holding a Redis lock can wait for a PostgreSQL session: that wait lengthens the hold.
public final class CommerceClient {
    private let ownDatabase: PostgresConnection?
    private let ownLocks: DistributedLockClient?
    public let pools: ClientPools?
    private let shared: SharedServices?
    private var borrowedDatabase: PostgresConnection?
    public var events: any EventSink
    public var settings: CommerceSettings
    public var gateway: any PaymentGateway
    public var faults: FaultHooks
    /// Who this client is in a pool's report of a session handed to two borrowers (`client 4`).
    public var borrowerName = "a client"

    public init(
        configuration: ServerConfiguration, shared: SharedServices?, events: any EventSink = NoEventSink(),
        settings: CommerceSettings = CommerceSettings(), gateway: any PaymentGateway = AlwaysApprovingGateway(),
        pools: ClientPools? = nil
    ) throws {
        self.shared = shared
        self.pools = pools
        if pools == nil {
            let database = try PostgresConnection(
                Self.clientURL(configuration.databaseURL), connectTimeoutSeconds: configuration.connectTimeoutSeconds)
            try database.setLockTimeout(milliseconds: settings.rowLockTimeoutMilliseconds)
            let redis = try RedisConnection(
                endpoint: configuration.redis, commandTimeout: settings.redisCommandTimeoutSeconds, clientName: Self.applicationName)
            ownDatabase = database
            ownLocks = DistributedLockClient(
                redis: redis, notifier: shared?.notifier, renewer: shared?.renewer, breaker: shared?.breaker,
                route: shared?.route, holders: shared?.holders)
        } else {
            ownDatabase = nil
            ownLocks = nil
        }
        self.events = events
        self.settings = settings
        self.gateway = gateway
        self.faults = FaultHooks()
    }

    /// This client's session: its own, or one borrowed from the pool until `releaseConnections()`.
    public var database: PostgresConnection {
        get throws {
            if let connection = ownDatabase ?? borrowedDatabase { return connection }
            let connection = try borrowDatabase()
            borrowedDatabase = connection
            return connection
        }
    }

    /// Runs `body` with a session; pooled, borrowed for `body` only (unless one is already held).
    @discardableResult
    public func withDatabase<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        if let connection = ownDatabase ?? borrowedDatabase { return try body(connection) }
        let connection = try borrowDatabase()
        borrowedDatabase = connection
        defer { releaseConnections() }
        return try body(connection)
    }

    /// One transaction (see `transaction(_:isolation:probe:_:)`) on a session held for its length.
    @discardableResult
    public func transaction<T>(
        isolation: IsolationLevel = .readCommitted, probe: Probe, _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        try withDatabase { try LockProofLocking.transaction($0, isolation: isolation, probe: probe, body) }
    }

    /// Gives a borrowed session back to the pool (a broken one is repaired or dropped).
    public func releaseConnections() {
        guard let connection = borrowedDatabase, let pools else { return }
        borrowedDatabase = nil
        if !connection.isConnected {
            try? connection.reconnectIfNeeded()
            if connection.isConnected { try? connection.setLockTimeout(milliseconds: settings.rowLockTimeoutMilliseconds) }
        }
        if connection.isConnected { pools.postgres.giveBack(connection) } else { pools.postgres.discard(connection) }
    }

    private func borrowDatabase() throws -> PostgresConnection {
        let (connection, waited) = try pools!.postgres.borrow(by: borrowerName)
        events.record(.poolWaited(.postgres, seconds: waited, holdingLock: heldLock != nil), caseName: "")
        return connection
    }

    /// The lock client for one hold: this client's own, or one on a borrowed Redis connection.
    private func withLockClient<T>(_ body: (DistributedLockClient) throws -> T) throws -> T {
        if let ownLocks { return try body(ownLocks) }
        let pool = pools!.redis
        let connection: RedisConnection, waited: Double
        do {
            (connection, waited) = try pool.borrow(by: borrowerName)
        } catch let error as RedisError {
            throw RedisConnectionNotOpened(error: error)
        }
        events.record(.poolWaited(.redis, seconds: waited, holdingLock: heldLock != nil), caseName: "")
        defer { connection.isConnected ? pool.giveBack(connection) : pool.discard(connection) }
        return try body(
            DistributedLockClient(
                redis: connection, notifier: shared?.notifier, renewer: shared?.renewer, breaker: shared?.breaker,
                route: shared?.route, holders: shared?.holders))
    }

    func probe(_ caseName: CaseName) -> Probe { Probe(caseName: caseName.rawValue, sink: events) }

    /// The `application_name` of client sessions: faults that terminate sessions pick these only.
    public static let applicationName = "lockproof-client"

    static func clientURL(_ url: String) -> String {
        guard !url.contains("application_name=") else { return url }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            return url + " application_name=\(applicationName)"  // key=value conninfo
        }
        return url + (url.contains("?") ? "&" : "?") + "application_name=\(applicationName)"
    }

    /// The seed's layering: the distributed lock first, around the whole transaction. While the
    /// Redis circuit breaker is open the body runs on its database locks alone.
    func withDistributedLock<T>(_ key: String, probe: Probe, _ body: () throws -> T) throws -> T {
        try withDistributedLockHandle(key, probe: probe) { _ in try body() }
    }

    /// The same, handing the body the lock (nil when Redis was skipped) for its fencing token.
    /// Pooled, a Redis connection that cannot be opened (Redis unreachable: every pooled one was
    /// dropped) counts as a failed acquire: the breaker counts it and the body runs on its database
    /// locks alone, as with a client's own connection. (Before, the borrow's error escaped before
    /// the breaker was asked: `serve` refused every request while Redis was down, 503.)
    func withDistributedLockHandle<T>(_ key: String, probe: Probe, _ body: (LockHandle?) throws -> T) throws -> T {
        func held(_ handle: LockHandle?) throws -> T {
            heldLock = handle
            defer { heldLock = nil }
            if handle != nil { try faults.whileHoldingLock?(key) }
            return try body(handle)
        }
        // Only a borrow that failed before the body ran falls back: a body that ran (and opened a
        // Redis connection of its own that failed) must not run a second time.
        var bodyRan = false
        do {
            return try withLockClient { locks in
                try locks.withLockOrFallback(key, options: settings.lock, probe: probe) {
                    bodyRan = true
                    return try held($0)
                }
            }
        } catch let unreachable as RedisConnectionNotOpened where !bodyRan {
            guard let breaker = shared?.breaker else { throw unreachable.error }
            if let changed = breaker.recordFailure() { probe.record(.circuitBreaker(changed)) }
            probe.record(.redisLockBypassed)
            return try held(nil)
        }
    }

    /// Deletes a lock key whoever holds it (the `stale-lock-broken` control's "stuck lock" cleanup).
    func deleteLockKey(_ key: String) throws {
        _ = try withLockClient { locks in try locks.redis.command(["DEL", key]) }
    }

    func think() throws {
        sleep(seconds: settings.processingDelaySeconds)
        try faults.duringThink?()
    }

    /// The Redis lock this client holds right now, if any (a paused holder's lease stops renewing).
    public private(set) var heldLock: LockHandle?

    /// Re-establishes the session after the server dropped it, so the next operation can run.
    public func recoverConnections() {
        guard let database = ownDatabase else { return releaseConnections() }
        try? database.reconnectIfNeeded()
        if database.isConnected { try? database.setLockTimeout(milliseconds: settings.rowLockTimeoutMilliseconds) }
    }
}

/// A pooled Redis connection that could not be opened for a lock hold (nothing was held yet).
private struct RedisConnectionNotOpened: Error {
    let error: RedisError
}
