import LockProofCommerce
import LockProofPostgres

/// `pg-terminate`: at `start` and then every `interval` until `start + duration`, `sessions`
/// client sessions of the throwaway PostgreSQL, picked at random among those of this run's clients
/// (application_name `lockproof-client`; those inside a transaction or a statement first), are terminated with `pg_terminate_backend`, whatever they
/// are doing: idle, in the middle of a transaction, or committing. Their operations end `unknown`.
/// Through a target (issue 18): the sessions of the target's own database (checked to be on the
/// throwaway PostgreSQL before the run), whatever program opened them, except LockProof's own
/// (this one, and the database claims, application_name `lockproof COMMAND pid=…`): the
/// implementation's request sessions, cut under its requests.
final class PgTerminateFault: FaultInjector {
    static let kind = FaultKind.pgTerminate
    static let timing = FaultTiming.strikes
    static let parameters = [
        FaultParameter(name: "sessions", range: 1...1_000, defaultValue: 1, help: "sessions terminated per strike")
    ]
    static let touchesServers = true
    private let spec: FaultSpec
    private let context: FaultContext
    private var connection: PostgresConnection?

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func prepare() throws {
        if let url = context.targetDatabaseURL {
            connection = try PostgresConnection(url)
        } else {
            connection = try context.configuration.openDatabase()
        }
    }

    func begin(into record: inout FaultRecord) throws {
        guard let connection else { return }
        try connection.reconnectIfNeeded()
        let rows = try context.targetDatabaseURL == nil ? ownClients(connection) : targetSessions(connection)
        record.targets = (0..<rows.rowCount).map { "session pid \(rows.int($0, 0) ?? 0) (\(rows.string($0, 1) ?? "?"))" }
        record.hits = rows.rowCount
        record.end = record.start
    }

    private func ownClients(_ connection: PostgresConnection) throws -> PostgresResult {
        try connection.query(
            """
            SELECT pid, state, pg_terminate_backend(pid) FROM (
                SELECT pid, coalesce(state, '') AS state FROM pg_stat_activity
                WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()
                ORDER BY state = 'idle', random() LIMIT $2) AS picked
            """, [CommerceClient.applicationName, Int(spec.parameter("sessions"))])
    }

    /// The target's sessions: client backends of its database, LockProof's own left out.
    private func targetSessions(_ connection: PostgresConnection) throws -> PostgresResult {
        try connection.query(
            """
            SELECT pid, state, pg_terminate_backend(pid) FROM (
                SELECT pid, coalesce(state, '') AS state FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                  AND coalesce(application_name, '') NOT LIKE 'lockproof %'
                ORDER BY state = 'idle', random() LIMIT $1) AS picked
            """, [Int(spec.parameter("sessions"))])
    }
}
