import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `instance-pause`: one `serve` instance of the cluster `scripts/cluster.sh` started is frozen
/// with SIGSTOP at `start` and thawed with SIGCONT after `duration`: a stop-the-world pause. Longer
/// than the Redis lock lease (5 s by default), the lease of a lock the instance holds expires, with
/// no watchdog running to renew it; another instance takes the lock; the paused one wakes up
/// believing it still holds it and writes. Only an instance whose pid is a `lockproof` listening
/// on the API port the cluster recorded is signalled.
final class InstancePauseFault: InstanceFault {
    static let kind = FaultKind.instancePause
    let spec: FaultSpec
    private var frozen: pid_t?

    init(spec: FaultSpec) { self.spec = spec }

    func begin(into record: inout FaultRecord) throws {
        let (instances, instance, pid) = try target()
        let number = instance.number
        guard kill(pid, SIGSTOP) == 0 else { throw FaultRefused(message: "SIGSTOP to instance \(number) pid \(pid) failed (errno \(errno))") }
        frozen = pid
        guard RedisPauseFault.isStopped(pid) else { throw FaultRefused(message: "instance \(number) pid \(pid) did not stop on SIGSTOP within 5 s") }
        record.targets = ["\(instances.describe(instance, pid: pid)) frozen with SIGSTOP"]
    }

    func end(into record: inout FaultRecord) throws {
        guard let pid = frozen else { return }
        kill(pid, SIGCONT)
        frozen = nil
        record.targets.append("thawed with SIGCONT")
        record.note = "a lock it held lost its lease while it slept; it woke believing it still held it"
    }

    func restore() {
        if let pid = frozen { kill(pid, SIGCONT) }
        frozen = nil
    }
}
