import Foundation
import LockProofCommerce
import Yams

/// `workload`: clients, length, pick mode, tunables, connections.
extension ScenarioReader {
    mutating func workloadSpec(_ node: Node, caseName: CaseName?) -> WorkloadSpec {
        var workload = WorkloadSpec()
        let fields = entries(
            node,
            known: [
                "virtual_users", "iterations", "duration", "start", "pick", "amount", "items", "quantity", "item_order",
                "think_ms", "mix", "gateway", "random_seed", "pay_after_create", "idempotency_keys", "idempotency_duplicates", "retry", "lock",
                "breaker", "row_lock_timeout_ms", "timeout", "connections", "recovery",
            ], section: "workload")
        if let entry = fields["virtual_users"] {
            if case .sequence(let items) = entry.value {
                let counts = items.compactMap { integer($0, "workload.virtual_users", range: 1...10_000) }
                if items.isEmpty { problem(entry.value, "workload.virtual_users: found an empty list; expected at least one count") }
                if counts.count == items.count && !counts.isEmpty { workload.virtualUsers = counts }
            } else if let count = integer(entry.value, "workload.virtual_users", range: 1...10_000) {
                workload.virtualUsers = [count]
            }
        } else {
            problem(node, "workload: missing key 'virtual_users'")
        }
        let iterations = fields["iterations"].flatMap { integer($0.value, "workload.iterations", range: 1...10_000_000) }
        let runSeconds = fields["duration"].flatMap { self.duration($0.value, "workload.duration") }
        switch (fields["iterations"], fields["duration"]) {
        case (nil, nil): problem(node, "workload: expected 'iterations' (per virtual user) or 'duration'")
        case (.some, .some): problem(fields["duration"]!.key, "workload: 'iterations' and 'duration' exclude each other; give one")
        default: break
        }
        workload.iterations = iterations
        workload.durationSeconds = runSeconds
        if let entry = fields["start"], let text = string(entry.value, "workload.start"), text != "barrier" {
            problem(entry.value, "workload.start: found '\(text)'; expected barrier (every client starts at once)")
        }
        if let v = fields["pick"].flatMap({ choice($0.value, "workload.pick", PickMode.allCases) }) { workload.pick = v }
        if let v = fields["amount"].flatMap({ integer($0.value, "workload.amount", range: 1...1_000_000_000) }) { workload.amount = v }
        if let v = fields["items"].flatMap({ integer($0.value, "workload.items", range: 1...100) }) { workload.items = v }
        if let v = fields["quantity"].flatMap({ integer($0.value, "workload.quantity", range: 1...1_000_000) }) { workload.quantity = v }
        if let v = fields["item_order"].flatMap({ choice($0.value, "workload.item_order", ItemOrder.allCases) }) { workload.itemOrder = v }
        if let v = fields["think_ms"].flatMap({ number($0.value, "workload.think_ms", range: 0...60_000) }) { workload.thinkMilliseconds = v }
        if let v = fields["random_seed"].flatMap({ integer($0.value, "workload.random_seed", range: 0...Int.max) }) {
            workload.randomSeed = UInt64(v)
        }
        if let v = fields["pay_after_create"].flatMap({ boolean($0.value, "workload.pay_after_create") }) { workload.payAfterCreate = v }
        if let v = fields["idempotency_keys"].flatMap({ boolean($0.value, "workload.idempotency_keys") }) { workload.idempotencyKeys = v }
        if let entry = fields["idempotency_duplicates"],
            let v = integer(entry.value, "workload.idempotency_duplicates", range: 1...1_000)
        {
            workload.idempotencyDuplicates = v
            if v > 1 && !workload.idempotencyKeys {
                problem(entry.value, "workload.idempotency_duplicates: found \(v) without idempotency_keys: true; duplicates need keys")
            }
        }
        if let v = fields["row_lock_timeout_ms"].flatMap({ integer($0.value, "workload.row_lock_timeout_ms", range: 0...600_000) }) {
            workload.rowLockTimeoutMilliseconds = v
        }
        if let v = fields["timeout"].flatMap({ duration($0.value, "workload.timeout") }) { workload.timeoutSeconds = v }
        // `mix` is read with the scenario's case and strategy: see mix(_:caseName:strategy:).
        if let entry = fields["gateway"] {
            let gateway = entries(entry.value, known: ["failure_rate", "latency_ms"], section: "workload.gateway")
            if let v = gateway["failure_rate"].flatMap({ number($0.value, "workload.gateway.failure_rate", range: 0...1) }) {
                workload.gatewayFailureRate = v
            }
            if let latency = gateway["latency_ms"] {
                if case .sequence(let bounds) = latency.value {
                    let values = bounds.compactMap { number($0, "workload.gateway.latency_ms", range: 0...60_000) }
                    if values.count == 2 && values[0] <= values[1] {
                        workload.gatewayLatencyMilliseconds = values[0]...values[1]
                    } else if values.count == bounds.count {
                        problem(latency.value, "workload.gateway.latency_ms: expected [min, max] with min ≤ max")
                    }
                } else if let value = number(latency.value, "workload.gateway.latency_ms", range: 0...60_000) {
                    workload.gatewayLatencyMilliseconds = value...value
                }
            }
        }
        if let entry = fields["retry"] {
            let retry = entries(entry.value, known: ["max_attempts"], section: "workload.retry")
            workload.retryMaxAttempts = retry["max_attempts"].flatMap { integer($0.value, "workload.retry.max_attempts", range: 1...1_000) }
        }
        if let entry = fields["connections"] { workload.connections = connections(entry.value) }
        if let entry = fields["recovery"] { workload.recovery = recovery(entry.value) }
        if let entry = fields["lock"] {
            let lock = entries(entry.value, known: ["lease_ms", "wait_ms", "renew"], section: "workload.lock")
            workload.lockLeaseMilliseconds = lock["lease_ms"].flatMap { integer($0.value, "workload.lock.lease_ms", range: 10...600_000) }
            workload.lockWaitMilliseconds = lock["wait_ms"].flatMap { integer($0.value, "workload.lock.wait_ms", range: 0...600_000) }
            workload.lockRenew = lock["renew"].flatMap { boolean($0.value, "workload.lock.renew") }
        }
        if let entry = fields["breaker"] {
            let breaker = entries(entry.value, known: ["failure_threshold", "cool_down_ms"], section: "workload.breaker")
            workload.breakerFailureThreshold = breaker["failure_threshold"].flatMap {
                integer($0.value, "workload.breaker.failure_threshold", range: 1...1_000_000)
            }
            workload.breakerCoolDownMilliseconds = breaker["cool_down_ms"].flatMap {
                integer($0.value, "workload.breaker.cool_down_ms", range: 0...600_000)
            }
        }
        return workload
    }

    /// `connections: 20` (both pools) or `{postgres: 20, redis: 64, wait: 5s}`.
    mutating func connections(_ node: Node) -> ConnectionsSpec? {
        let range = 1...10_000
        if case .scalar = node {
            return integer(node, "workload.connections", range: range).map { ConnectionsSpec(postgres: $0, redis: $0) }
        }
        let fields = entries(node, known: ["postgres", "redis", "wait"], section: "workload.connections")
        guard case .mapping = node else { return nil }
        guard let postgres = fields["postgres"].flatMap({ integer($0.value, "workload.connections.postgres", range: range) }) else {
            if fields["postgres"] == nil { problem(node, "workload.connections: missing key 'postgres' (the PostgreSQL pool's size)") }
            return nil
        }
        var spec = ConnectionsSpec(postgres: postgres, redis: postgres)
        if let entry = fields["redis"] {
            guard let redis = integer(entry.value, "workload.connections.redis", range: range) else { return nil }
            spec.redis = redis
        }
        if let entry = fields["wait"] {
            guard let wait = duration(entry.value, "workload.connections.wait") else { return nil }
            spec.waitSeconds = wait
        }
        return spec
    }

    /// `recovery: {workers: 3, every: 20ms, min_age_ms: 0}`: payment recovery during the workload.
    mutating func recovery(_ node: Node) -> RecoverySpec? {
        let fields = entries(node, known: ["workers", "every", "min_age_ms"], section: "workload.recovery")
        guard case .mapping = node else { return nil }
        var missing = false
        for key in ["workers", "every"] where fields[key] == nil {
            problem(node, "workload.recovery: missing key '\(key)'")
            missing = true
        }
        let workers = fields["workers"].flatMap { integer($0.value, "workload.recovery.workers", range: 1...64) }
        let every = fields["every"].flatMap { duration($0.value, "workload.recovery.every") }
        var minimumAge = 0.0
        if let entry = fields["min_age_ms"] {
            guard let value = number(entry.value, "workload.recovery.min_age_ms", range: 0...86_400_000) else { return nil }
            minimumAge = value / 1000
        }
        guard !missing, let workers, let every else { return nil }
        return RecoverySpec(workers: workers, everySeconds: every, minimumAgeSeconds: minimumAge)
    }

    /// `faults:`: a list of {kind, start, duration, interval, and the kind's parameters}.
}
