import Foundation
import LockProofCommerce

/// How a scenario meets a target: what refuses it (it cannot run through the target: nothing is
/// written), and what runs but is reported as not checked (never as a silent pass).
public struct TargetFit: Sendable, Equatable {
    /// Why the scenario cannot run through the target, each naming what is missing or refused.
    public var refusals: [String] = []
    /// Checkers whose input the target does not map, with the state they need.
    public var uncheckedCheckers: [String] = []
    /// Thresholds on what only LockProof's in-process strategies record (retries, lock waits, …).
    public var uncheckedThresholds: [String] = []
    /// Scenario settings that configure LockProof's own strategies, not the target's.
    public var ignoredSettings: [String] = []

    public var runnable: Bool { refusals.isEmpty }
}

extension Target {
    /// Fault kinds that reach into LockProof's own process (a client stalled between read and
    /// write, its simulated gateway, its compensations, a client dying after its deduction): they
    /// cannot strike an implementation behind HTTP. Server faults (Redis, PostgreSQL sessions) can.
    public static let inProcessFaults: Set<FaultKind> = [.clientPause, .gatewayFailure, .compensationFailure, .crashAfterDeduct]

    /// What a client sees of an HTTP implementation: operations, their outcomes and latencies.
    public static let observableMetrics: Set<String> = [
        "throughput", "errors", "latency", "lockproof_operations_total", "lockproof_operation_duration_seconds",
    ]

    /// The state each checker reads (the ledgers and the balance ledger's references are checked
    /// when mapped, and left out otherwise: the checker's other checks still run).
    public static func stateNeeded(byChecker checker: String) -> [StateKind] {
        switch checker {
        case "money-conservation": return [.balances]
        case "stock-conservation": return [.stock, .orders, .orderItems]
        case "compensation": return [.orders, .compensations]
        case "coupon-quantity": return [.coupons, .couponIssues]
        case "order-creation": return [.orders, .orderItems]
        case "single-winner": return [.orders]
        case "cart-increments": return [.cartLines]
        case "daily-limit": return [.spendingLimits, .spends]
        default: return []
        }
    }

    /// The checkers a scenario's operations call for: the runner's own choice (`checkers(for:)`).
    static func checkerNames(for scenario: Scenario) -> [String] {
        checkers(for: scenario).map(\.name)
    }

    public func fit(_ scenario: Scenario) -> TargetFit {
        var fit = TargetFit()
        // `runs` counts create-order's payments of what it creates as `pay`.
        let missing = missingOperations(OperationName.allCases.filter(scenario.performs).map(\.rawValue))
        if !missing.isEmpty {
            fit.refusals.append("the target \(name) has no \(missing.joined(separator: ", ")) (\(file): operations)")
        }
        for fault in scenario.faults where Self.inProcessFaults.contains(fault.kind) {
            fit.refusals.append(
                "fault \(fault.kind.rawValue) strikes inside LockProof's own process; an HTTP target cannot be struck by it")
        }
        if scenario.performs(.pay), scenario.workload.gatewayFailureRate > 0 || scenario.workload.gatewayLatencyMilliseconds.upperBound > 0 {
            fit.refusals.append(
                "workload.gateway configures LockProof's simulated payment gateway, which an HTTP target does not call")
        }
        if scenario.seed.cartQuantity > 0, scenario.performs(.add), seed[.cartLines] == nil {
            fit.refusals.append("seed.cart_quantity opens cart lines, and the target has no seed.cart_lines (\(file))")
        }
        for checker in Self.checkerNames(for: scenario) {
            let unmapped = Self.stateNeeded(byChecker: checker).filter { state[$0] == nil }
            if !unmapped.isEmpty {
                fit.uncheckedCheckers.append("\(checker): the target maps no state.\(unmapped.map(\.rawValue).joined(separator: ", state."))")
            }
        }
        for threshold in scenario.thresholds where !Self.observableMetrics.contains(threshold.metric) {
            fit.uncheckedThresholds.append("\(threshold.target): \(threshold.expression)")
        }
        let strategies = Set(scenario.operations.map(\.strategy))
        if strategies != ["seed"] {
            fit.ignoredSettings.append("strategy \(strategies.sorted().joined(separator: ", ")): the target runs its own locks")
        }
        let workload = scenario.workload
        if workload.retryMaxAttempts != nil { fit.ignoredSettings.append("workload.retry") }
        if workload.lockLeaseMilliseconds != nil || workload.lockWaitMilliseconds != nil || workload.lockRenew != nil { fit.ignoredSettings.append("workload.lock") }
        if workload.breakerFailureThreshold != nil || workload.breakerCoolDownMilliseconds != nil {
            fit.ignoredSettings.append("workload.breaker")
        }
        if workload.connections != nil { fit.ignoredSettings.append("workload.connections") }
        if workload.thinkMilliseconds > 0 { fit.ignoredSettings.append("workload.think_ms") }
        return fit
    }
}
