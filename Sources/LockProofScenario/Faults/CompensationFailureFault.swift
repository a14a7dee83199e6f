/// `compensation-failure`: from `start` for `duration`, `rate` of the compensation transactions
/// lose their transaction before commit: they roll back and stay `pending`, which raises
/// `lockproof_compensations_pending` until `lockproof recover` (run at the end of the scenario)
/// carries them out.
final class CompensationFailureFault: FaultInjector {
    static let kind = FaultKind.compensationFailure
    static let timing = FaultTiming.window(durationRequired: true)
    static let parameters = [
        FaultParameter(name: "rate", range: 0...1, defaultValue: 1, help: "share of compensations that fail")
    ]
    static let touchesServers = false
    private let spec: FaultSpec
    private let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func begin(into record: inout FaultRecord) throws {
        context.clients.setCompensationFailureRate(spec.parameter("rate"))
        record.targets = ["compensation transactions: \(Int((spec.parameter("rate") * 100).rounded()))% fail before commit"]
    }

    func end(into record: inout FaultRecord) throws {
        context.clients.setCompensationFailureRate(0)
        record.hits = context.clients.hits(.compensationFailure)
    }

    func restore() { context.clients.setCompensationFailureRate(0) }
}
