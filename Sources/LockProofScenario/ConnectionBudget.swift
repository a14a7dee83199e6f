import LockProofCommerce
import LockProofPostgres

/// A run would open more PostgreSQL sessions than the server has left.
public struct ConnectionBudgetExceeded: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Compares the sessions scenarios need with what the server has left, before anything runs, so
/// that a 500-user rush is refused with the numbers rather than failing with "too many clients".
public enum ConnectionBudget {
    /// Sessions one run opens: one per virtual user or the pool's size, the runner's own (seed,
    /// checks), and the end-of-run payment recovery's.
    public static func sessionsNeeded(_ scenario: Scenario) -> (clients: Int, total: Int) {
        let users = scenario.workload.virtualUsers.max() ?? 1
        let clients = scenario.workload.connections.map { min($0.postgres, users) } ?? users
        return (clients, clients + 1 + (scenario.runs("pay") ? 1 : 0))
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

    /// Throws, naming the scenario and the numbers, when one of `scenarios` cannot fit.
    public static func check(_ scenarios: [Scenario], _ db: PostgresConnection) throws {
        let server = try available(db)
        for scenario in scenarios {
            let needed = sessionsNeeded(scenario)
            guard needed.total > server.available else { continue }
            let users = scenario.workload.virtualUsers.max() ?? 1
            let clients = scenario.workload.connections == nil
                ? "\(users) virtual users with a session each" : "a pool of \(needed.clients)"
            throw ConnectionBudgetExceeded(
                message: "\(scenario.file): scenario \(scenario.name) needs \(needed.total) PostgreSQL sessions (\(clients), \(needed.total - needed.clients) for the runner), but the server has \(server.available) left (max_connections \(server.max), \(server.inUse) in use, \(server.reserved) reserved for superusers); set workload.connections to share a pool, or lower virtual_users")
        }
    }
}
