/// `crash-after-deduct`: from `start` for `duration`, `rate` of the payments' clients die right
/// after their deduction committed, before the gateway is asked or the order is marked PAID. The
/// payment intent written with the deduction is what recovery finds and settles.
final class CrashAfterDeductFault: FaultInjector {
    static let kind = FaultKind.crashAfterDeduct
    static let timing = FaultTiming.window(durationRequired: true)
    static let parameters = [
        FaultParameter(name: "rate", range: 0...1, defaultValue: 1, help: "share of payments whose client dies")
    ]
    static let touchesServers = false
    private let spec: FaultSpec
    private let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func begin(into record: inout FaultRecord) throws {
        context.clients.setCrashRate(spec.parameter("rate"))
        record.targets = ["payment clients: \(Int((spec.parameter("rate") * 100).rounded()))% die after their deduction"]
    }

    func end(into record: inout FaultRecord) throws {
        context.clients.setCrashRate(0)
        record.hits = context.clients.hits(.crashAfterDeduct)
    }

    func restore() { context.clients.setCrashRate(0) }
}
