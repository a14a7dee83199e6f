import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `redis-down`: the throwaway Redis is stopped (SIGTERM) at `start` and started again, empty,
/// after `duration`. Clients meanwhile find it refusing connections: the circuit breaker opens and
/// the cases run on their database locks alone.
final class RedisDownFault: FaultInjector {
    static let kind = FaultKind.redisDown
    static let timing = FaultTiming.window(durationRequired: true)
    static let parameters: [FaultParameter] = []
    static let touchesServers = true
    private let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) { self.context = context }

    func begin(into record: inout FaultRecord) throws {
        guard let servers = context.servers else { throw FaultRefused(message: "no throwaway Redis process to stop") }
        let pid = try servers.verifiedRedisPid()
        try ManagedServers.stop(pid: pid)
        try ManagedServers.confirmDown(port: servers.redisPort, pid: pid)
        record.targets = ["redis 127.0.0.1:\(servers.redisPort) (pid \(pid)) stopped, port refusing"]
    }

    func end(into record: inout FaultRecord) throws {
        guard let servers = context.servers else { return }
        let pid = try servers.restartPrimary()
        record.targets.append("started again (pid \(pid)), empty, answering PING")
    }

    func restore() { try? context.servers?.restartPrimary() }
}
