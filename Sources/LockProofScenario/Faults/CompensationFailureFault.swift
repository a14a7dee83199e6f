/// `compensation-failure`: from `start` for `duration`, `rate` of the compensation transactions
/// lose their transaction before commit: they roll back and stay `pending`, which raises
/// `lockproof_compensations_pending` until `lockproof recover` (run at the end of the scenario)
/// carries them out. Strikes from the clients' `beforeCompensationCommit` hook
/// (`ClientFaultSwitches.install`).
final class CompensationFailureFault: ClientHookRateFault {
    static let kind = FaultKind.compensationFailure
    static let parameters = [
        FaultParameter(name: "rate", range: 0...1, defaultValue: 1, help: "share of compensations that fail")
    ]
    let spec: FaultSpec
    let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    static func target(failing share: String) -> String { "compensation transactions: \(share) fail before commit" }
}
