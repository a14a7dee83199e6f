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
        guard let servers = context.servers else { throw FaultRefused(message: "no running throwaway Redis process to freeze") }
        let pid = try servers.verifiedRedisPid()
        guard kill(pid, SIGSTOP) == 0 else { throw FaultRefused(message: "SIGSTOP to redis pid \(pid) failed (errno \(errno))") }
        frozen = pid
        guard Self.isStopped(pid) else { throw FaultRefused(message: "redis pid \(pid) did not stop on SIGSTOP within 5 s") }
        record.targets = ["redis 127.0.0.1:\(servers.redisPort) (pid \(pid)) frozen with SIGSTOP"]
    }

    func end(into record: inout FaultRecord) throws {
        guard let pid = frozen, let servers = context.servers else { return }
        kill(pid, SIGCONT)
        frozen = nil
        try ManagedServers.waitForPing(port: servers.redisPort)
        record.targets.append("thawed with SIGCONT, answering PING")
    }

    /// Is `pid` in the stopped state ('T' in /proc/PID/stat), within 5 s?
    static func isStopped(_ pid: pid_t) -> Bool {
        for _ in 0..<100 {
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
                stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first == "T"
            {
                return true
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func restore() {
        if let pid = frozen { kill(pid, SIGCONT) }
        frozen = nil
    }
}
