import Foundation
import LockProofConfiguration
import LockProofLocking
import LockProofPostgres
import LockProofRedis
import Synchronization

/// One run per database: a run (run, verify, bench, recover, and the runner in tests) holds the
/// database for its whole length, so that no other run disturbs what its checkers judge.
///
/// A PostgreSQL session-level advisory lock on a dedicated connection, whose application_name says
/// who holds it (`lockproof run pid=… since=… host=…`), so that a refused command can name the
/// holder from pg_locks and pg_stat_activity. A run takes the lock exclusively; `serve` (the system
/// a run may drive) takes it shared: several serve instances coexist, a run refuses a database a
/// serve instance writes to, and serve refuses one a run holds. The lock ends with the session, so
/// a killed run leaves nothing behind.
///
/// A run also holds its Redis keyspace: the lock keys it clears and uses live in the Redis
/// database of LOCKPROOF_REDIS_URL, which two runs on two PostgreSQL databases could share. So a
/// run sets `lockproof:run-owner` (SET NX, 30 s TTL renewed every 10 s while it lives; deleted by
/// its own token at the end): a second run on the same Redis database is refused likewise, and
/// a run killed without cleanup frees it within 30 s.
public final class DatabaseClaim: @unchecked Sendable {
    public enum Role: String, Sendable {
        case run, serve
    }

    /// The advisory lock: the two-int4 form, so pg_locks shows it as classid/objid with objsubid 2.
    static let lockSpace: Int32 = 0x4C50_5246  // "LPRF"
    static let inUseKey: Int32 = 1
    public static let redisKey = "lockproof:run-owner"
    static let redisLeaseMilliseconds = 30_000
    static let renewSeconds = 10.0

    public let role: Role
    /// Whether it holds the Redis database too (`lockproof:run-owner`).
    public let holdsRedis: Bool
    /// The application_name of the claiming session: who, from which process and host, since when.
    public let holder: String
    private var connection: PostgresConnection?
    private let configuration: ServerConfiguration
    private let redisToken: String
    private var renewer: PeriodicThread?
    private let redisLost = Mutex<String?>(nil)

    private init(role: Role, holder: String, connection: PostgresConnection, configuration: ServerConfiguration, holdsRedis: Bool) {
        self.holdsRedis = holdsRedis
        self.role = role
        self.holder = holder
        self.connection = connection
        self.configuration = configuration
        redisToken = "\(holder) token=\(UUID().uuidString)"
    }

    deinit { release() }

    /// Claims the database named by `configuration` for `role`, or throws `DatabaseBusy` naming
    /// who holds it. Waits up to `waitSeconds` for the holder to finish (0: refuse at once),
    /// calling `waiting` once with the holder's description when it starts waiting.
    /// `holdRedis`: a run that uses the Redis lock keys also claims the Redis database.
    public static func acquire(
        _ role: Role, configuration: ServerConfiguration, command: String, waitSeconds: Double = 0, holdRedis: Bool = true,
        waiting: ((String) -> Void)? = nil
    ) throws -> DatabaseClaim {
        let connection = try configuration.openDatabase()
        let holder = holderName(command: command)
        try connection.query("SELECT set_config('application_name', $1, false)", [holder])
        let claim = DatabaseClaim(
            role: role, holder: holder, connection: connection, configuration: configuration, holdsRedis: role == .run && holdRedis)
        let deadline = monotonicSeconds() + max(0, waitSeconds)
        var announced = false
        while true {
            let busy = try claim.tryClaim()
            guard let busy else { break }
            if monotonicSeconds() >= deadline {
                claim.release()
                throw DatabaseBusy(message: busy + (waitSeconds > 0 ? " (waited \(formatSeconds(waitSeconds)) s)" : ""))
            }
            if !announced {
                waiting?(busy)
                announced = true
            }
            Thread.sleep(forTimeInterval: min(0.25, max(0.01, deadline - monotonicSeconds())))
        }
        if claim.holdsRedis {
            let renewer = PeriodicThread(name: "lockproof-claim-renewer", intervalSeconds: renewSeconds, firstPass: .afterInterval) {
                [weak claim] in claim?.renewRedis()
            }
            claim.renewer = renewer
            renewer.start()
        }
        return claim
    }

    /// Takes the lock (and for a run the Redis key), or returns why not, naming the holder.
    private func tryClaim() throws -> String? {
        guard let connection else { return "released" }
        let function = role == .run ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared"
        let got = try connection.query("SELECT \(function)($1::int4, $2::int4)", [Int(Self.lockSpace), Int(Self.inUseKey)])
        guard got.bool(0, 0) == true else { return try busyMessage(connection) }
        guard holdsRedis else { return nil }
        let redis = try RedisConnection(endpoint: configuration.redis, commandTimeout: 5)
        let set = try redis.checked(["SET", Self.redisKey, redisToken, "NX", "PX", String(Self.redisLeaseMilliseconds)])
        if set == .null {
            try connection.query("SELECT pg_advisory_unlock($1::int4, $2::int4)", [Int(Self.lockSpace), Int(Self.inUseKey)])
            let owner = try redis.checked(["GET", Self.redisKey]).text.map(Self.withoutToken) ?? "another LockProof run"
            return "the Redis database \(configuration.redis) is in use by another LockProof run (\(owner); its key \(Self.redisKey) expires 30 s after that run stops renewing it): a run there would clear and take that run's lock keys. Wait for it to finish (run, verify, bench, recover and serve wait with --wait-for-database SECONDS), or use another Redis database (LOCKPROOF_REDIS_URL …/N)."
        }
        return nil
    }

    /// Who holds the lock, from pg_locks and pg_stat_activity, as a sentence for the refusal.
    private func busyMessage(_ connection: PostgresConnection) throws -> String {
        let rows = try connection.query(
            """
            SELECT a.application_name, a.pid, coalesce(host(a.client_addr), 'a local socket'),
                   to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), l.mode, current_database()
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2 AND l.objsubid = 2 AND l.granted
              AND l.pid <> pg_backend_pid()
            ORDER BY a.backend_start
            """, [Int(Self.lockSpace), Int(Self.inUseKey)])
        let database = rows.rowCount > 0 ? (rows.string(0, 5) ?? "?") : (connection.target.database ?? "?")
        var runs: [String] = []
        var serves: [String] = []
        for row in 0..<rows.rowCount {
            let name = rows.string(row, 0).flatMap { $0.isEmpty ? nil : $0 } ?? "a session without application_name"
            let text = "\(name) (PostgreSQL backend \(rows.int(row, 1) ?? 0), connected from \(rows.string(row, 2) ?? "?") since \(rows.string(row, 3) ?? "?"))"
            if rows.string(row, 4) == "ExclusiveLock" { runs.append(text) } else { serves.append(text) }
        }
        let how = "Wait for it to finish (run, verify, bench, recover and serve wait with --wait-for-database SECONDS), or point LOCKPROOF_DATABASE_URL at another database."
        if !runs.isEmpty {
            let what = role == .run
                ? "a second run would change the data the first one's checkers judge"
                : "serve would write into the data that run's checkers judge"
            return "database \(database) is held by a LockProof run: \(runs.joined(separator: "; ")); \(what). \(how)"
        }
        if !serves.isEmpty {
            return "database \(database) is being written to by \(serves.count == 1 ? "a lockproof serve instance" : "\(serves.count) lockproof serve instances"): \(serves.joined(separator: "; ")); a run's verdict would be about both. Stop it, wait (run, verify, bench and recover take --wait-for-database SECONDS), or point LOCKPROOF_DATABASE_URL at another database."
        }
        // Released between the try and this look: the next try decides.
        return "database \(database) was held by another LockProof process a moment ago. \(how)"
    }

    /// Keeps the Redis key alive; takes it back if Redis lost it (restarted, failed over) and
    /// nobody else took it; records the loss otherwise.
    private func renewRedis() {
        let script = RedisScript(
            """
            local owner = redis.call('GET', KEYS[1])
            if owner == ARGV[1] or not owner then
                redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
                return 1
            end
            return 0
            """)
        guard
            let redis = try? RedisConnection(endpoint: configuration.redis, commandTimeout: 2),
            let reply = try? redis.eval(script, keys: [Self.redisKey], arguments: [redisToken, String(Self.redisLeaseMilliseconds)])
        else { return }  // Redis unreachable (a fault): try again at the next pass.
        if reply.integer == 0 {
            let owner = (try? redis.checked(["GET", Self.redisKey]).text).flatMap { $0 }.map(Self.withoutToken) ?? "?"
            redisLost.withLock { $0 = $0 ?? "another LockProof run took the Redis database \(configuration.redis) (\(owner))" }
        }
    }

    /// Nil while the claim holds; else what happened. A lost PostgreSQL session is claimed again
    /// when nobody else took the lock meanwhile.
    public func lost() -> String? {
        if let redis = redisLost.withLock({ $0 }) { return redis }
        guard let connection else { return "the claim was released" }
        do {
            let held: Bool
            do {
                held = try connection.query(
                    """
                    SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
                      AND classid::text::bigint = $1 AND objid::text::bigint = $2 AND objsubid = 2 AND granted
                    """, [Int(Self.lockSpace), Int(Self.inUseKey)]).int(0, 0) ?? 0 > 0
            } catch {
                // The session is gone (terminated, server restarted), and its lock with it.
                try connection.reconnectIfNeeded()
                held = false
            }
            if held { return nil }
            try connection.query("SELECT set_config('application_name', $1, false)", [holder])
            let function = role == .run ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared"
            if try connection.query("SELECT \(function)($1::int4, $2::int4)", [Int(Self.lockSpace), Int(Self.inUseKey)]).bool(0, 0) == true {
                return nil
            }
            return "its database lock was lost and taken meanwhile: " + (try busyMessage(connection))
        } catch {
            return "its database lock could not be checked: \(error)"
        }
    }

    /// Ends the claim: the Redis key (only if still this run's) and the session with its lock.
    public func release() {
        renewer?.stop()
        renewer = nil
        if holdsRedis, connection != nil, let redis = try? RedisConnection(endpoint: configuration.redis, commandTimeout: 2) {
            let script = RedisScript(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
            _ = try? redis.eval(script, keys: [Self.redisKey], arguments: [redisToken])
        }
        connection = nil  // closing the session ends its advisory lock
    }

    /// `lockproof run pid=123 since=2026-12-04T17:30:00Z host=name`, within PostgreSQL's 63 bytes.
    static func holderName(command: String) -> String {
        var host = ProcessInfo.processInfo.hostName
        let formatter = ISO8601DateFormatter()
        let head = "lockproof \(command) pid=\(getpid()) since=\(formatter.string(from: Date())) host="
        let room = max(0, 63 - head.utf8.count)
        while host.utf8.count > room { host.removeLast() }
        return head + host
    }

    static func withoutToken(_ value: String) -> String {
        value.components(separatedBy: " token=").first ?? value
    }

    private static func formatSeconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension DatabaseClaim {
    /// The preflight of every command that writes, before it writes anything: refuses a database
    /// that is not LockProof's (`Schema.ownership`) or that the user cannot write, claims it (see
    /// `acquire`), then creates the schema and its marker if the database was empty.
    public static func claimForWriting(
        _ role: Role, configuration: ServerConfiguration, command: String, waitSeconds: Double = 0, holdRedis: Bool = true,
        waiting: ((String) -> Void)? = nil
    ) throws -> DatabaseClaim {
        let database = try configuration.openDatabase()
        try refuseUnlessWritable(database, configuration: configuration)
        let claim = try acquire(
            role, configuration: configuration, command: command, waitSeconds: waitSeconds, holdRedis: holdRedis, waiting: waiting)
        do {
            try Schema.apply(database)
        } catch {
            claim.release()
            throw error
        }
        return claim
    }

    /// Throws `DatabaseNotOwned` for a database that is not LockProof's, `DatabaseRefused` when
    /// the user lacks a privilege a run needs. Catalog reads only: no lock anyone notices.
    public static func refuseUnlessWritable(_ database: PostgresConnection, configuration: ServerConfiguration) throws {
        let missing = try Schema.missingPrivileges(database)
        guard missing.isEmpty else {
            let user = (try? PostgresTarget(conninfo: configuration.databaseURL))?.user ?? "the database user"
            throw DatabaseRefused(
                message: "\(user) lacks privileges a run needs on \(redactedURL(configuration.databaseURL)): \(missing.joined(separator: "; "))")
        }
    }
}

/// A database LockProof will not write to for lack of a privilege.
public struct DatabaseRefused: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// A database (or Redis database) another LockProof process holds (see `DatabaseClaim`).
public struct DatabaseBusy: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
