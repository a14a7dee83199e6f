import LockProofCommerce

/// `gateway-failure`: from `start` for `duration`, the simulated gateway declines `failure_rate`
/// of the charges, carries out `timeout_rate` of them without answering (the client records
/// `unknown`; recovery settles them), and answers after `latency_ms`.
final class GatewayFailureFault: FaultInjector {
    static let kind = FaultKind.gatewayFailure
    static let timing = FaultTiming.window(durationRequired: true)
    static let parameters = [
        FaultParameter(name: "failure_rate", range: 0...1, defaultValue: 0, help: "share of charges declined"),
        FaultParameter(name: "timeout_rate", range: 0...1, defaultValue: 0, help: "share of charges made but never answered"),
        FaultParameter(name: "latency_ms", range: 0...60_000, defaultValue: 0, help: "time to answer"),
    ]
    static let touchesServers = false
    private let spec: FaultSpec
    private let context: FaultContext
    private var before: GatewayBehaviour?
    private var callsBefore = 0

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func begin(into record: inout FaultRecord) throws {
        let gateway = context.gateway
        before = gateway.behaviour
        callsBefore = gateway.calls
        let latency = spec.parameter("latency_ms") / 1000
        gateway.behaviour = GatewayBehaviour(
            latencySeconds: latency...latency, failureRate: spec.parameter("failure_rate"), timeoutRate: spec.parameter("timeout_rate"))
        record.targets = [
            "gateway: declines \(percent(spec.parameter("failure_rate"))), never answers \(percent(spec.parameter("timeout_rate"))), answers after \(Int(spec.parameter("latency_ms"))) ms"
        ]
    }

    func end(into record: inout FaultRecord) throws {
        if let before { context.gateway.behaviour = before }
        before = nil
        record.hits = context.gateway.calls - callsBefore
        record.note = "\(record.hits ?? 0) gateway calls during the fault"
    }

    func restore() {
        if let before { context.gateway.behaviour = before }
    }

    private func percent(_ rate: Double) -> String { "\(Int((rate * 100).rounded()))%" }
}
