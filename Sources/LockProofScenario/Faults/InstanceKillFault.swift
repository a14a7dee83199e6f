import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `instance-kill`: one `serve` instance of the cluster `scripts/cluster.sh` started is killed
/// with SIGKILL at `start` (no shutdown: the requests in flight there get no answer, their outcome
/// is unknown; a payment between its deduction and the gateway's answer stays `open`) and started
/// again after `duration`, as it was first started. Its recovery (`--recover-interval`) then
/// settles the interrupted payments. Only an instance whose pid is a `lockproof` listening on the
/// API port the cluster recorded is signalled.
final class InstanceKillFault: InstanceFault {
    static let kind = FaultKind.instanceKill
    let spec: FaultSpec
    private var killed: (instances: ManagedInstances, number: Int)?

    init(spec: FaultSpec) { self.spec = spec }

    func begin(into record: inout FaultRecord) throws {
        let (instances, instance, pid) = try target()
        let number = instance.number
        guard kill(pid, SIGKILL) == 0 else { throw FaultRefused(message: "SIGKILL to instance \(number) pid \(pid) failed (errno \(errno))") }
        killed = (instances, number)
        try ManagedInstances.confirmKilled(pid: pid, instance: instance)
        record.targets = ["\(instances.describe(instance, pid: pid)) killed with SIGKILL"]
    }

    func end(into record: inout FaultRecord) throws {
        guard let (instances, number) = killed else { return }
        killed = nil
        let pid = try instances.restart(number)
        record.targets.append("restarted as pid \(pid), listening on 127.0.0.1:\(try instances.instance(number).apiPort)")
        record.note = "requests in flight on the killed instance got no answer (unknown); its recovery settles the payments it interrupted"
    }

    /// Leaves the cluster as it was found: a killed instance not yet restarted is started again.
    func restore() {
        guard let (instances, number) = killed else { return }
        killed = nil
        _ = try? instances.restart(number)
    }
}
