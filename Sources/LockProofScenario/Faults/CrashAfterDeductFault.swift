/// `crash-after-deduct`: from `start` for `duration`, `rate` of the payments' clients die right
/// after their deduction committed, before the gateway is asked or the order is marked PAID. The
/// payment intent written with the deduction is what recovery finds and settles. Strikes from the
/// clients' `afterDeduction` hook (`ClientFaultSwitches.install`).
final class CrashAfterDeductFault: ClientHookRateFault {
    static let kind = FaultKind.crashAfterDeduct
    static let parameters = [
        FaultParameter(name: "rate", range: 0...1, defaultValue: 1, help: "share of payments whose client dies")
    ]
    let spec: FaultSpec
    let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    static func target(failing share: String) -> String { "payment clients: \(share) die after their deduction" }
}
