import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `redis-pause`: the throwaway Redis is frozen (SIGSTOP) at `start` and thawed (SIGCONT) after
/// `duration`, longer than the lock lease: leases expire while their holders still work, and
/// clients' commands time out, which opens the circuit breaker.
final class RedisPauseFault: FaultInjector {
    static let kind = FaultKind.redisPause
    static let timing = FaultTiming.window(durationRequired: true)
    static let parameters: [FaultParameter] = []
    static let touchesServers = true
    private let context: FaultContext
    private var frozen: pid_t?

    init(spec: FaultSpec, context: FaultContext) { self.context = context }

    func begin(into record: inout FaultRecord) throws {
        guard let servers = context.servers, let pid = servers.redisPid(), ManagedServers.isRunning(pid) else {
            throw FaultRefused(message: "no running throwaway Redis process to freeze")
        }
        guard kill(pid, SIGSTOP) == 0 else { throw FaultRefused(message: "SIGSTOP to redis pid \(pid) failed (errno \(errno))") }
        frozen = pid
        record.targets = ["redis 127.0.0.1:\(servers.redisPort) (pid \(pid)) frozen with SIGSTOP"]
    }

    func end(into record: inout FaultRecord) throws {
        guard let pid = frozen else { return }
        kill(pid, SIGCONT)
        frozen = nil
        record.targets.append("thawed with SIGCONT")
    }

    func restore() {
        if let pid = frozen { kill(pid, SIGCONT) }
        frozen = nil
    }
}
