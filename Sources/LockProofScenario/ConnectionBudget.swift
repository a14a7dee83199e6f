import LockProofCommerce
import LockProofConfiguration
import LockProofPostgres
import LockProofRedis

/// A run would open more PostgreSQL sessions or Redis connections than the server has left.
public struct ConnectionBudgetExceeded: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Compares the sessions scenarios need with what the server has left, before anything runs, so
/// that a 500-user rush is refused with the numbers rather than failing with "too many clients"
/// (PostgreSQL) or "max number of clients reached" (Redis).
public enum ConnectionBudget {
    /// Sessions one run opens: one per virtual user or the pool's size, the runner's own (seed,
    /// checks), and with payments the end-of-run recovery's, the simulated gateway's and one per recovery
    /// worker (`workload.recovery`).
    public static func sessionsNeeded(_ scenario: Scenario) -> (clients: Int, total: Int) {
        let users = scenario.workload.virtualUsers.max() ?? 1
        let clients = scenario.workload.connections.map { min($0.postgres, users) } ?? users
        let recoveryWorkers = scenario.performs(.pay) ? scenario.workload.recovery?.workers ?? 0 : 0
        return (clients, clients + 1 + recoveryWorkers + (scenario.performs(.pay) ? 1 + DatabaseGatewayRecords.defaultSessions : 0))
    }

    /// What the server has left for this role: `max_connections`, less the slots reserved for
    /// superusers (unless it is one), less the client sessions open now other than this one.
    public static func available(_ db: PostgresConnection) throws -> (available: Int, max: Int, inUse: Int, reserved: Int) {
        let row = try db.query(
            """
            SELECT current_setting('max_connections')::int,
                   CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                        THEN 0 ELSE current_setting('superuser_reserved_connections')::int END,
                   (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())
            """)
        let max = row.int(0, 0) ?? 0, reserved = row.int(0, 1) ?? 0, inUse = row.int(0, 2) ?? 0
        return (max - reserved - inUse, max, inUse, reserved)
    }

    /// Redis connections one run opens: one per virtual user or the Redis pool's size, and the
    /// process's own: the lock-release subscriber, the lease renewer, the runner's and a fault's.
    public static func redisConnectionsNeeded(_ scenario: Scenario) -> (clients: Int, total: Int) {
        let users = scenario.workload.virtualUsers.max() ?? 1
        let clients = scenario.workload.connections.map { min($0.redis, users) } ?? users
        return (clients, clients + 4)
    }

    /// What the Redis server has left: `maxclients` less the connections open now other than this
    /// one. Nil when the server does not say (CONFIG refused to this user): the run then meets the
    /// limit, if at all, as a connection error.
    public static func redisAvailable(_ redis: RedisConnection) -> (available: Int, max: Int, inUse: Int)? {
        guard let config = try? redis.checked(["CONFIG", "GET", "maxclients"]).array, config.count == 2,
            let max = config[1].integer.map(Int.init),
            let info = try? redis.checked(["INFO", "clients"]).text,
            let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("connected_clients:") }),
            let connected = Int(line.dropFirst("connected_clients:".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let inUse = Swift.max(0, connected - 1)
        return (max - inUse, max, inUse)
    }

    /// Checks both servers `configuration` names, each over a connection of its own.
    /// `processSessions`: PostgreSQL sessions the command opens besides the runs' (run/verify's
    /// pending-compensations poller).
    public static func check(_ scenarios: [Scenario], configuration: ServerConfiguration, processSessions: Int = 0) throws {
        let redis = try? RedisConnection(endpoint: configuration.redis, commandTimeout: Double(configuration.connectTimeoutSeconds))
        try check(scenarios, try configuration.openDatabase(), redis: redis, processSessions: processSessions)
    }

    /// Throws, naming the scenario and the numbers, when one of `scenarios` cannot fit.
    public static func check(
        _ scenarios: [Scenario], _ db: PostgresConnection, redis: RedisConnection? = nil, processSessions: Int = 0
    ) throws {
        if let redis, let server = redisAvailable(redis) {
            try refuseFirstMisfit(
                scenarios, needs: redisConnectionsNeeded, available: server.available, units: "Redis connections",
                unit: "connection",
                server: "maxclients \(server.max), \(server.inUse) in use",
                advice: "set workload.connections to share a pool, lower virtual_users, or raise maxclients")
        }
        let server = try available(db)
        try refuseFirstMisfit(
            scenarios, needs: sessionsNeeded, available: server.available - processSessions, units: "PostgreSQL sessions", unit: "session",
            server: "max_connections \(server.max), \(server.inUse) in use, \(server.reserved) reserved for superusers",
            advice: "set workload.connections to share a pool, or lower virtual_users")
    }

    private static func refuseFirstMisfit(
        _ scenarios: [Scenario], needs: (Scenario) -> (clients: Int, total: Int), available: Int, units: String, unit: String,
        server: String, advice: String
    ) throws {
        for scenario in scenarios {
            let needed = needs(scenario)
            guard needed.total > available else { continue }
            let users = scenario.workload.virtualUsers.max() ?? 1
            let clients = scenario.workload.connections == nil
                ? "\(users) virtual users with a \(unit) each" : "a pool of \(needed.clients)"
            throw ConnectionBudgetExceeded(
                message: "\(scenario.file): scenario \(scenario.name) needs \(needed.total) \(units) (\(clients), \(needed.total - needed.clients) for the runner), but the server has \(available) left (\(server)); \(advice)")
        }
    }
}
