import Foundation
import LockProofConfiguration

/// Which of a scenario's faults may strike through a target (issue 18). The in-process hooks
/// (`Target.inProcessFaults`) are refused by `fit`; the server faults strike the throwaway Redis
/// and PostgreSQL exactly as in process (`ManagedServers.check`), `pg-terminate` the sessions of
/// the target's own database, which must be on that PostgreSQL; the instance faults strike an
/// instance of the cluster `scripts/cluster.sh` started (LOCKPROOF_MANAGED_CLUSTER_DIR) only when
/// that instance is one of the target's base URLs: the target's instances are LockProof's only
/// when LockProof started them.
extension Target {
    /// Why the scenario's faults cannot strike through this target, each naming the fault and
    /// what is missing; empty: every one can. Reads the environment and the cluster's pid files,
    /// signals nothing.
    public func faultRefusals(
        _ scenario: Scenario, configuration: ServerConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        let kinds = scenario.faults.map(\.kind).filter { !Self.inProcessFaults.contains($0) }
        guard kinds.contains(where: \.touchesServers) else { return [] }
        var refusals: [String] = []
        do {
            let database = try databaseURL(environment: environment)
            _ = try ManagedServers.check(configuration, faults: kinds, targetDatabaseURL: database, environment: environment)
        } catch let refused as FaultRefused {
            refusals.append(refused.message)
        } catch {
            refusals.append("\(error)")
        }
        for spec in scenario.faults where spec.kind == .instanceKill || spec.kind == .instancePause {
            if let reason = instanceRefusal(spec, environment: environment) { refusals.append(reason) }
        }
        return refusals
    }

    /// Nil when the instance `spec` names is a running `lockproof` LockProof's cluster started and
    /// one of this target's base URLs.
    func instanceRefusal(_ spec: FaultSpec, environment: [String: String]) -> String? {
        let number = Int(spec.parameter("instance"))
        let urls: [String]
        do { urls = try resolvedBaseURLs(environment: environment) } catch { return "\(error)" }
        let head = "fault \(spec.kind.rawValue) (instance \(number)) through the target \(name)"
        let cluster: ManagedInstances
        do {
            guard let found = try ManagedInstances.fromEnvironment(environment) else {
                return "\(head): LockProof strikes only instances it started, and \(ManagedInstances.environmentKey) names no cluster; the target's instances (\(urls.joined(separator: " "))) are not known to be LockProof's (start them with scripts/cluster.sh start N BASEPORT and export what it prints)"
            }
            cluster = found
        } catch {
            return "\(head): \(error)"
        }
        let instance: ManagedInstances.Instance
        do {
            instance = try cluster.instance(number)
            _ = try cluster.verifiedPid(number)
        } catch {
            return "\(head): \(error)"
        }
        let loopback: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]
        let serves = urls.contains { text in
            guard let url = URLComponents(string: text), let host = url.host, loopback.contains(host) else { return false }
            return url.port == instance.apiPort
        }
        guard serves else {
            return "\(head): instance \(number) of the cluster in \(cluster.folder) listens on 127.0.0.1:\(instance.apiPort), which is not one of the target's base URLs (\(urls.joined(separator: " "))); LockProof strikes only the target's instances it started"
        }
        return nil
    }
}
