import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofRedis

#if canImport(Glibc)
    import Glibc
#endif

/// `redis-failover`: a real replica (a second redis-server with `replicaof`, on
/// LOCKPROOF_MANAGED_REDIS_REPLICA_PORT) follows the throwaway primary from before the run. At
/// `start` the replica stops replicating (it is promoted: `REPLICAOF NO ONE`, as a failover does
/// to a replica that lags) while clients go on taking locks on the old primary for `lag_ms`; then
/// the old primary crashes (SIGKILL) and the clients are pointed at the new one, as Sentinel
/// would. Locks taken during the lag exist only on
/// the dead primary: their holders still work while another client takes the same lock on the new
/// one (Redisson issue #775, Kleppmann). The fencing counters lose their last increments too: the
/// new primary hands out tokens the database has already accepted. The report says how many locks
/// and how much of the counters the failover lost. At the end of the run the original primary is
/// started again (empty) and the replica stopped.
final class RedisFailoverFault: FaultInjector {
    static let kind = FaultKind.redisFailover
    static let timing = FaultTiming.window(durationRequired: false)
    static let parameters = [
        FaultParameter(name: "lag_ms", range: 10...60_000, defaultValue: 500, help: "how long replication is held back before the primary dies")
    ]
    static let touchesServers = true
    private let spec: FaultSpec
    private let context: FaultContext
    private var promoted = false

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    private var servers: ManagedServers {
        get throws {
            guard let servers = context.servers else { throw FaultRefused(message: "no throwaway Redis to fail over") }
            return servers
        }
    }

    private func endpoint(port: Int) -> RedisEndpoint {
        var endpoint = context.configuration.redis
        endpoint.port = port
        return endpoint
    }

    /// Starts the replica and waits until it has synchronised with the primary.
    func prepare() throws {
        let servers = try servers
        if let pid = try? servers.verifiedReplicaPid() { try ManagedServers.stop(pid: pid) }
        guard ServerProcess.portRefuses(servers.replicaPort) else {
            throw FaultRefused(message: "port \(servers.replicaPort) (LOCKPROOF_MANAGED_REDIS_REPLICA_PORT) is taken by another process")
        }
        let directory = (servers.redisPidFile as NSString).deletingLastPathComponent
        try ManagedServers.startRedis(
            [
                "--port", String(servers.replicaPort), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", directory,
                "--pidfile", servers.replicaPidFile, "--logfile", directory + "/replica.log", "--save", "", "--appendonly", "no",
                "--maxclients", "2000", "--replicaof", "127.0.0.1", String(servers.redisPort),
            ], port: servers.replicaPort)
        let replica = try RedisConnection(endpoint: endpoint(port: servers.replicaPort), commandTimeout: 2)
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            if let info = try? replica.checked(["INFO", "replication"]).text, info.contains("master_link_status:up") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw FaultRefused(message: "the replica on port \(servers.replicaPort) did not synchronise within 10 s")
    }

    func begin(into record: inout FaultRecord) throws {
        let servers = try servers
        let primaryPid = try servers.verifiedRedisPid()
        let replicaPid = try servers.verifiedReplicaPid()
        let replica = try RedisConnection(endpoint: endpoint(port: servers.replicaPort), commandTimeout: 5)
        try replica.checked(["REPLICAOF", "NO", "ONE"])
        promoted = true
        LockProofLocking.sleep(seconds: spec.parameter("lag_ms") / 1000)
        let old = try? RedisConnection(endpoint: endpoint(port: servers.redisPort), commandTimeout: 2)
        let locksBefore = old.map { Self.locks(on: $0) } ?? [:]
        let fencesBefore = old.map { Self.fences(on: $0) } ?? [:]
        // Clients move the moment the primary dies (Sentinel's detection delay is not modelled:
        // clients meeting a dead primary would only fall back, and hide the lost locks).
        kill(primaryPid, SIGKILL)
        context.shared.route.switchTo(endpoint(port: servers.replicaPort))
        try ManagedServers.stop(pid: primaryPid, signal: SIGKILL)
        try ManagedServers.confirmDown(port: servers.redisPort, pid: primaryPid)
        let locksAfter = Self.locks(on: replica)
        // A lock is lost when the new primary lacks it or has another holder's token: a key alone
        // is not enough, the replica may still carry an earlier holder's entry until it expires.
        let lost = locksBefore.filter { locksAfter[$0.key] != $0.value }.keys.sorted()
        let fencesAfter = Self.fences(on: replica)
        let rewound = fencesBefore.filter { (fencesAfter[$0.key] ?? 0) < $0.value }.sorted { $0.key < $1.key }
        let rewoundExample = rewound.first.map { "\($0.key): \($0.value) on the old primary, \(fencesAfter[$0.key] ?? 0) on the new" }
        record.targets = [
            "replica 127.0.0.1:\(servers.replicaPort) (pid \(replicaPid)) promoted, \(Int(spec.parameter("lag_ms"))) ms of writes behind",
            "primary 127.0.0.1:\(servers.redisPort) (pid \(primaryPid)) killed",
            "clients moved to the new primary",
        ]
        record.failover = FailoverEffect(
            locksHeld: locksBefore.count, locksLost: lost.count, lostExample: lost.first,
            fencingCountersRewound: rewound.count, rewoundExample: rewoundExample)
        record.note =
            "\(locksBefore.count) locks held on the old primary when it died, \(lost.count) of them lost on the new one (\(lost.first.map { "e.g. \($0); " } ?? "")free to be taken again while their holders still work); \(rewound.count) fencing counters went backwards\(rewoundExample.map { " (\($0))" } ?? "")"
    }

    func end(into record: inout FaultRecord) throws {
        guard promoted else { return }
        let servers = try servers
        try servers.restartPrimary()
        context.shared.route.switchTo(context.configuration.redis)
        try ManagedServers.stop(pid: try servers.verifiedReplicaPid())
        promoted = false
        record.targets.append("after the run: original primary started again (empty), replica stopped")
    }

    func restore() {
        guard let servers = context.servers else { return }
        try? servers.restartPrimary()
        context.shared.route.switchTo(context.configuration.redis)
        if let pid = try? servers.verifiedReplicaPid() { try? ManagedServers.stop(pid: pid) }
    }

    /// The case locks present on a server: key → holder's token.
    static func locks(on redis: RedisConnection) -> [String: String] {
        var locks: [String: String] = [:]
        for pattern in caseLockKeyPatterns {
            var cursor = "0"
            repeat {
                guard let reply = try? redis.checked(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]),
                    let parts = reply.array, parts.count == 2, let next = parts[0].text
                else { return locks }
                cursor = next
                for key in parts[1].array?.compactMap(\.text) ?? [] {
                    if let token = (try? redis.checked(["GET", key]))?.text { locks[key] = token }
                }
            } while cursor != "0"
        }
        return locks
    }

    /// Fencing counter values by lock key.
    static func fences(on redis: RedisConnection) -> [String: Int] {
        var values: [String: Int] = [:]
        var cursor = "0"
        repeat {
            guard let reply = try? redis.checked(["SCAN", cursor, "MATCH", "lockproof:fence:*", "COUNT", "1000"]),
                let parts = reply.array, parts.count == 2, let next = parts[0].text
            else { return values }
            cursor = next
            for key in parts[1].array?.compactMap(\.text) ?? [] {
                values[String(key.dropFirst("lockproof:fence:".count))] = Int(((try? redis.checked(["GET", key]))?.text) ?? "") ?? 0
            }
        } while cursor != "0"
        return values
    }
}
