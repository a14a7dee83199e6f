/// `client-pause`: from `start`, the next `clients` lock holders that reach the point between
/// their read and their write stall for `pause_ms` (a GC-pause stand-in; their lease stops being
/// renewed, as a paused process renews nothing), then go on writing. Each pause is reported as it
/// happened. `duration` bounds the time in which pauses are dealt out (default: the rest of the run).
final class ClientPauseFault: FaultInjector {
    static let kind = FaultKind.clientPause
    static let timing = FaultTiming.window(durationRequired: false)
    static let parameters = [
        FaultParameter(name: "clients", range: 1...1_000, defaultValue: 1, help: "how many lock holders stall"),
        FaultParameter(name: "pause_ms", range: 1...600_000, defaultValue: 2_000, help: "how long each stalls, past its lease"),
    ]
    static let touchesServers = false
    private let spec: FaultSpec
    private let context: FaultContext

    init(spec: FaultSpec, context: FaultContext) {
        self.spec = spec
        self.context = context
    }

    func begin(into record: inout FaultRecord) throws {
        let count = Int(spec.parameter("clients"))
        context.clients.armPauses(count: count, seconds: spec.parameter("pause_ms") / 1000)
        record.targets = ["the next \(count) Redis lock holder(s) to reach their write, \(Int(spec.parameter("pause_ms"))) ms each"]
    }

    func end(into record: inout FaultRecord) throws {
        context.clients.disarmPauses()
        record.hits = context.clients.hits(.clientPause)
    }
}
