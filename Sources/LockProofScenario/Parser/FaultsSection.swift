import Foundation
import LockProofLocking
import Yams

/// `faults`: the nemesis' schedule.
extension ScenarioReader {
    mutating func faultList(_ node: Node, scenario: Scenario) -> [FaultSpec] {
        if case .scalar = node, node.null != nil { return [] }
        guard case .sequence(let items) = node else {
            problem(node, "faults: found \(describe(node)); expected a list of faults such as - {kind: redis-down, start: 2s, duration: 3s}")
            return []
        }
        var faults: [FaultSpec] = []
        let leaseSeconds = Double(scenario.workload.lockLeaseMilliseconds ?? DistributedLockOptions.standard.leaseMilliseconds) / 1000
        for (position, item) in items.enumerated() {
            let field = "faults[\(position)]"
            guard case .mapping = item, let kindNode = mappingEntry(item, "kind")?.value else {
                problem(item, "\(field): expected a mapping with 'kind' (\(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            guard let kind = choice(kindNode, "\(field).kind", FaultKind.allCases) else { continue }
            let injector = kind.injector
            let parameterNames = injector.parameters.map(\.name)
            let fields = entries(item, known: ["kind", "start", "duration", "interval"] + parameterNames, section: "\(field) (\(kind.rawValue))")
            var spec = FaultSpec(kind: kind, startSeconds: 0, durationSeconds: nil, intervalSeconds: nil, parameters: [:])
            if let entry = fields["start"] {
                if case .scalar(let scalar) = entry.value, ["0", "0s", "0ms"].contains(scalar.string) {
                    spec.startSeconds = 0
                } else if let start = duration(entry.value, "\(field).start") {
                    spec.startSeconds = start
                }
            }
            spec.durationSeconds = fields["duration"].flatMap { duration($0.value, "\(field).duration") }
            spec.intervalSeconds = fields["interval"].flatMap { duration($0.value, "\(field).interval") }
            for parameter in injector.parameters {
                spec.parameters[parameter.name] = parameter.defaultValue
                if let entry = fields[parameter.name],
                    let value = number(entry.value, "\(field).\(parameter.name)", range: parameter.range)
                {
                    spec.parameters[parameter.name] = value
                }
            }
            switch injector.timing {
            case .window(let durationRequired):
                if durationRequired && fields["duration"] == nil {
                    problem(item, "\(field) (\(kind.rawValue)): missing key 'duration' (how long the fault lasts)")
                }
                if let entry = fields["interval"] {
                    problem(entry.key, "\(field) (\(kind.rawValue)): 'interval' applies to faults that strike repeatedly (pg-terminate); this one lasts from start for its duration")
                }
            case .strikes:
                if fields["interval"] != nil && fields["duration"] == nil {
                    problem(item, "\(field) (\(kind.rawValue)): 'interval' needs 'duration' (how long the strikes go on)")
                }
            }
            if kind == .redisPause || kind == .instancePause, let seconds = spec.durationSeconds, seconds <= leaseSeconds {
                problem(fields["duration"]!.value, "\(field).duration: found \(formatNumber(seconds)) s; expected longer than the lock lease (\(formatNumber(leaseSeconds)) s, workload.lock.lease_ms): a shorter pause expires no lease")
            }
            if kind == .clientPause, spec.parameter("pause_ms") / 1000 <= leaseSeconds {
                problem(fields["pause_ms"]?.value ?? item, "\(field).pause_ms: found \(formatNumber(spec.parameter("pause_ms"))); expected longer than the lock lease (\(formatNumber(leaseSeconds * 1000)) ms, workload.lock.lease_ms): a shorter stall loses no lock")
            }
            if kind == .redisClientKill, !scenario.locksTaken.contains(.redis) {
                problem(kindNode, "\(field).kind: redis-client-kill drops the clients' Redis lock connections, and no strategy of this scenario (\(scenario.strategyLabel)) takes the Redis lock")
            }
            if [.crashAfterDeduct, .compensationFailure, .gatewayFailure].contains(kind), !scenario.performs(.pay) {
                problem(kindNode, "\(field).kind: \(kind.rawValue) strikes payments, and the scenario runs none (pay, or create with pay_after_create)")
            }
            if let runSeconds = scenario.workload.durationSeconds, spec.startSeconds >= runSeconds {
                problem(fields["start"]?.value ?? item, "\(field).start: found \(formatNumber(spec.startSeconds)) s; the run lasts \(formatNumber(runSeconds)) s (workload.duration): it would never strike")
            }
            faults.append(spec)
        }
        if faults.filter({ $0.kind == .redisFailover }).count > 1 {
            problem(node, "faults: at most one redis-failover per scenario (there is one replica)")
        }
        return faults
    }
}
