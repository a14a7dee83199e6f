import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The `lockproof serve` instances `scripts/cluster.sh` started (its run folder, exported as
/// LOCKPROOF_MANAGED_CLUSTER_DIR): the only instances `instance-kill` and `instance-pause` may
/// signal. The folder's `instances` file lists each instance's number and ports; `instance-K.pid`
/// its pid, which is signalled only once checked to be a running `lockproof` listening on the
/// instance's API port; `instance-K.sh` starts it again as it was first started.
public struct ManagedInstances: Sendable, Equatable {
    public struct Instance: Sendable, Equatable {
        public let number: Int
        public let apiPort: Int
        public let metricsPort: Int
    }

    public static let environmentKey = "LOCKPROOF_MANAGED_CLUSTER_DIR"

    public let folder: String
    public let instances: [Instance]

    /// Reads the run folder; throws naming the file, line and value it cannot read.
    public init(folder: String) throws {
        self.folder = folder
        let list = folder + "/instances"
        guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
            throw FaultRefused(message: "\(list) cannot be read: no cluster started by scripts/cluster.sh there")
        }
        var instances: [Instance] = []
        for (index, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ").compactMap { Int($0) }
            guard fields.count == 3, fields[0] >= 1, (1...65_535).contains(fields[1]), (1...65_535).contains(fields[2]) else {
                throw FaultRefused(message: "\(list) line \(index + 1): '\(line.prefix(60))' is not 'K API_PORT METRICS_PORT'")
            }
            instances.append(Instance(number: fields[0], apiPort: fields[1], metricsPort: fields[2]))
        }
        guard !instances.isEmpty else { throw FaultRefused(message: "\(list) lists no instance") }
        self.instances = instances
    }

    /// The cluster the environment names; nil when it names none.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> ManagedInstances?
    {
        guard let folder = environment[environmentKey], !folder.isEmpty else { return nil }
        return try ManagedInstances(folder: folder)
    }

    /// The cluster the environment names, or a refusal saying how to start one.
    static func required(
        by kind: FaultKind, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ManagedInstances {
        guard let instances = try fromEnvironment(environment) else {
            throw FaultRefused(
                message: "fault \(kind.rawValue) strikes serve instances, and LockProof strikes only instances it started; \(environmentKey) names none (start them with scripts/cluster.sh start N BASEPORT)")
        }
        return instances
    }

    public func instance(_ number: Int) throws -> Instance {
        guard let instance = instances.first(where: { $0.number == number }) else {
            throw FaultRefused(message: "instance \(number): \(folder)/instances lists instances \(instances.map(\.number))")
        }
        return instance
    }

    func pidFile(_ number: Int) -> String { "\(folder)/instance-\(number).pid" }

    /// Instance `number`'s pid, once checked to be a running `lockproof` listening on its API port.
    public func verifiedPid(_ number: Int) throws -> pid_t {
        let instance = try instance(number)
        let file = pidFile(number)
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { throw FaultRefused(message: "\(file) holds no pid") }
        try ServerProcess.verify(pid: pid, program: "lockproof", port: instance.apiPort, pidFile: file)
        return pid
    }

    /// Starts instance `number` again with its own `instance-K.sh` and waits (at most
    /// `timeoutSeconds`) until its pid file names a `lockproof` listening on its API port. Refuses
    /// while anything listens on that port: never a second server beside one LockProof did not start.
    @discardableResult
    public func restart(_ number: Int, timeoutSeconds: Double = 60) throws -> pid_t {
        let instance = try instance(number)
        guard ServerProcess.portRefuses(instance.apiPort) else {
            throw FaultRefused(
                message: "port \(instance.apiPort) has a listener (\(ServerProcess.listeners(port: instance.apiPort).joined(separator: ", "))); not starting instance \(number) beside it")
        }
        try ServerProcess.spawnAndReap(["bash", "\(folder)/instance-\(number).sh"])
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        var lastError: Error = FaultRefused(message: "instance \(number) did not start")
        while Date() < deadline {
            do {
                return try verifiedPid(number)
            } catch {
                lastError = error
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw FaultRefused(message: "instance \(number) did not listen on port \(instance.apiPort) within \(Int(timeoutSeconds)) s: \(lastError)")
    }

    /// Waits (at most 5 s) until `pid` is gone and its API port refuses connections.
    static func confirmKilled(pid: pid_t, instance: Instance) throws {
        for _ in 0..<100 where ManagedServers.isRunning(pid) || !ServerProcess.portRefuses(instance.apiPort) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        guard !ManagedServers.isRunning(pid), ServerProcess.portRefuses(instance.apiPort) else {
            throw FaultRefused(message: "instance \(instance.number) (pid \(pid)) still runs or its port \(instance.apiPort) still listens 5 s after SIGKILL")
        }
    }

    func describe(_ instance: Instance, pid: pid_t) -> String {
        "serve instance \(instance.number) api 127.0.0.1:\(instance.apiPort) (pid \(pid))"
    }
}

/// `instance-kill` and `instance-pause`: a window on one instance of the cluster, named by the
/// `instance` parameter, resolved and checked (`ManagedInstances.verifiedPid`) before any signal.
protocol InstanceFault: FaultInjector {
    var spec: FaultSpec { get }
    /// The fault without a scenario run's context (tests that drive the API directly).
    init(spec: FaultSpec)
}

extension InstanceFault {
    static var timing: FaultTiming { .window(durationRequired: true) }
    static var parameters: [FaultParameter] {
        [FaultParameter(name: "instance", range: 1...100, defaultValue: 1, help: "which instance of the cluster (1..N)")]
    }
    static var touchesServers: Bool { true }

    init(spec: FaultSpec, context: FaultContext) { self.init(spec: spec) }

    /// The cluster, the instance the spec names and its checked pid.
    func target() throws -> (ManagedInstances, ManagedInstances.Instance, pid_t) {
        let instances = try ManagedInstances.required(by: Self.kind)
        let number = Int(spec.parameter("instance"))
        return (instances, try instances.instance(number), try instances.verifiedPid(number))
    }
}
