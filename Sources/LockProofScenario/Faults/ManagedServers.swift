import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofPostgres
import LockProofRedis

#if canImport(Glibc)
    import Glibc
#endif

/// The servers the runner's environment says it started itself (`scripts/services.sh` exports
/// LOCKPROOF_MANAGED_*): the only ones a fault may stop, freeze, fail over or cut sessions of.
/// Servers merely named by LOCKPROOF_DATABASE_URL / LOCKPROOF_REDIS_URL are never touched.
public struct ManagedServers: Sendable {
    public let redisPort: Int
    public let redisConfig: String
    public let redisPidFile: String
    public let replicaPort: Int
    public let postgresPort: Int

    /// Reads the environment; nil when it names no throwaway servers.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ManagedServers? {
        guard let redisPort = environment["LOCKPROOF_MANAGED_REDIS_PORT"].flatMap(Int.init),
            let config = environment["LOCKPROOF_MANAGED_REDIS_CONF"], !config.isEmpty,
            let pidFile = environment["LOCKPROOF_MANAGED_REDIS_PIDFILE"], !pidFile.isEmpty,
            let postgresPort = environment["LOCKPROOF_MANAGED_PG_PORT"].flatMap(Int.init)
        else { return nil }
        let replica = environment["LOCKPROOF_MANAGED_REDIS_REPLICA_PORT"].flatMap(Int.init) ?? 26380
        return ManagedServers(
            redisPort: redisPort, redisConfig: config, redisPidFile: pidFile, replicaPort: replica, postgresPort: postgresPort)
    }

    /// Refuses, with the reason, unless the configured servers are these throwaway ones.
    /// `targetDatabaseURL`: a run through a target, whose database's sessions `pg-terminate` cuts
    /// (it must be on the throwaway PostgreSQL too); nil: LockProof's own database.
    public static func check(
        _ configuration: ServerConfiguration, faults: [FaultKind], targetDatabaseURL: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ManagedServers? {
        let serverFaults = faults.filter(\.touchesServers)
        guard !serverFaults.isEmpty else { return fromEnvironment(environment) }
        let kinds = Set(serverFaults.map(\.rawValue)).sorted().joined(separator: ", ")
        guard let managed = fromEnvironment(environment) else {
            throw FaultRefused(
                message: "faults \(kinds) strike servers, and LockProof strikes only servers it started itself; the environment names none (run through `make verify` or scripts/with-services.sh, which start throwaway servers)")
        }
        let loopback = ["127.0.0.1", "localhost", "::1"]
        guard loopback.contains(configuration.redis.host), configuration.redis.port == managed.redisPort else {
            throw FaultRefused(
                message: "faults \(kinds): LOCKPROOF_REDIS_URL names \(configuration.redis), not the throwaway Redis on port \(managed.redisPort); refusing to strike a server LockProof did not start")
        }
        do {
            _ = try managed.verifiedRedisPid()
        } catch {
            throw FaultRefused(message: "faults \(kinds): LOCKPROOF_MANAGED_REDIS_PIDFILE \(error)")
        }
        let instanceFaults = serverFaults.filter { $0 == .instanceKill || $0 == .instancePause }
        if let kind = instanceFaults.first {
            _ = try ManagedInstances.required(by: kind, environment: environment)
        }
        if serverFaults.contains(.pgTerminate) {
            let target = try? PostgresTarget(conninfo: targetDatabaseURL ?? configuration.databaseURL)
            let host = target?.host ?? "127.0.0.1"
            guard loopback.contains(host) || host.hasPrefix("/"), target?.port.flatMap(Int.init) == managed.postgresPort else {
                let named = targetDatabaseURL == nil ? "LOCKPROOF_DATABASE_URL does" : "the target's database (database.url_env) does"
                throw FaultRefused(
                    message: "fault pg-terminate: \(named) not name the throwaway PostgreSQL on port \(managed.postgresPort); refusing to terminate sessions of a server LockProof did not start")
            }
        }
        return managed
    }

    public var primary: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: redisPort) }
    public var replica: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: replicaPort) }

    func redisPid() -> pid_t? {
        guard let text = try? String(contentsOfFile: redisPidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return nil }
        return pid
    }

    /// The primary's pid, once checked to be the redis-server listening on the managed port.
    func verifiedRedisPid() throws -> pid_t {
        guard let pid = redisPid() else { throw FaultRefused(message: "\(redisPidFile) holds no pid") }
        try ServerProcess.verify(pid: pid, program: "redis-server", port: redisPort, pidFile: redisPidFile)
        return pid
    }

    /// The replica's pid, once checked to be the redis-server listening on the replica port.
    func verifiedReplicaPid() throws -> pid_t {
        guard let pid = replicaPid() else { throw FaultRefused(message: "\(replicaPidFile) holds no pid") }
        try ServerProcess.verify(pid: pid, program: "redis-server", port: replicaPort, pidFile: replicaPidFile)
        return pid
    }

    /// Throws unless nothing listens on `port` any more (within 5 s): the server really went
    /// down. Not at once: a killed process's main thread is a zombie while its other threads
    /// still exit, and the last of them closes the listening socket.
    static func confirmDown(port: Int, pid: pid_t) throws {
        for _ in 0..<100 where !ServerProcess.portRefuses(port) { Thread.sleep(forTimeInterval: 0.05) }
        guard ServerProcess.portRefuses(port) else {
            let holders = ServerProcess.listeners(port: port)
            throw FaultRefused(
                message: "redis-server pid \(pid) stopped, but port \(port) still has a listener (\(holders.isEmpty ? "a process this user cannot see" : holders.joined(separator: ", "))): the server did not go down")
        }
    }

    var replicaPidFile: String { (redisPidFile as NSString).deletingLastPathComponent + "/replica.pid" }

    func replicaPid() -> pid_t? {
        guard let text = try? String(contentsOfFile: replicaPidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return nil }
        return pid
    }

    /// Is `pid` a running process? A zombie (a daemon whose parent does not reap it) is not.
    static func isRunning(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Stops a server process and waits (at most 10 s) until it is gone. Only for a pid checked
    /// by `verifiedRedisPid` / `verifiedReplicaPid`.
    static func stop(pid: pid_t, signal: Int32 = SIGTERM) throws {
        kill(pid, SIGCONT)  // a frozen server cannot act on SIGTERM
        kill(pid, signal)
        for _ in 0..<200 {
            if !isRunning(pid) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw FaultRefused(message: "redis-server pid \(pid) did not stop within 10 s")
    }

    /// Starts `redis-server` with `arguments` (it daemonizes) and waits until `port` answers PING.
    static func startRedis(_ arguments: [String], port: Int) throws {
        try ServerProcess.spawnAndReap(["redis-server"] + arguments)
        try waitForPing(port: port)
    }

    static func waitForPing(port: Int, seconds: Double = 10) throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if let redis = try? RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), commandTimeout: 1),
                (try? redis.checked(["PING"])) != nil
            {
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw FaultRefused(message: "redis-server on port \(port) did not answer within \(Int(seconds)) s")
    }

    /// The primary again, as `scripts/services.sh` started it, if it is not running; throws unless
    /// it then answers PING and its pid file names it. Never a second server beside one that
    /// holds the port: that one is not LockProof's to replace.
    @discardableResult
    func restartPrimary() throws -> pid_t {
        if let pid = try? verifiedRedisPid() { return pid }
        guard ServerProcess.portRefuses(redisPort) else {
            throw FaultRefused(
                message: "port \(redisPort) has a listener that is not the redis-server \(redisPidFile) names; not starting a second one")
        }
        try Self.startRedis([redisConfig], port: redisPort)
        return try verifiedRedisPid()
    }
}

/// A fault LockProof will not inject here, or could not.
public struct FaultRefused: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
