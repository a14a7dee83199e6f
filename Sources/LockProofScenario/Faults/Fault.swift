import Foundation
import LockProofCommerce
import LockProofConfiguration
import LockProofLocking
import Synchronization

/// The nemesis' vocabulary: each kind lives in its own file beside this one; the runner only
/// schedules them (`Nemesis`).
public enum FaultKind: String, Sendable, CaseIterable, Codable {
    case redisDown = "redis-down"
    case redisPause = "redis-pause"
    case redisFailover = "redis-failover"
    case redisClientKill = "redis-client-kill"
    case clientPause = "client-pause"
    case pgTerminate = "pg-terminate"
    case gatewayFailure = "gateway-failure"
    case compensationFailure = "compensation-failure"
    case crashAfterDeduct = "crash-after-deduct"
    case instanceKill = "instance-kill"
    case instancePause = "instance-pause"

    var injector: any FaultInjector.Type {
        switch self {
        case .redisDown: return RedisDownFault.self
        case .redisPause: return RedisPauseFault.self
        case .redisFailover: return RedisFailoverFault.self
        case .redisClientKill: return RedisClientKillFault.self
        case .clientPause: return ClientPauseFault.self
        case .pgTerminate: return PgTerminateFault.self
        case .gatewayFailure: return GatewayFailureFault.self
        case .compensationFailure: return CompensationFailureFault.self
        case .crashAfterDeduct: return CrashAfterDeductFault.self
        case .instanceKill: return InstanceKillFault.self
        case .instancePause: return InstancePauseFault.self
        }
    }

    /// Strikes a server (needs servers the runner's environment says it started itself).
    public var touchesServers: Bool { injector.touchesServers }
}

/// How a kind unfolds in time.
enum FaultTiming {
    /// Begins at `start`, ends after `duration` (or when the run ends).
    case window(durationRequired: Bool)
    /// Strikes at `start`, then every `interval` until `start + duration`.
    case strikes
}

/// One numeric parameter a kind accepts.
struct FaultParameter {
    let name: String
    let range: ClosedRange<Double>
    let defaultValue: Double
    let help: String
}

/// A fault as written in a scenario's `faults:` list.
public struct FaultSpec: Sendable, Equatable {
    public var kind: FaultKind
    /// Seconds after the run's start (the barrier).
    public var startSeconds: Double
    public var durationSeconds: Double?
    public var intervalSeconds: Double?
    /// The kind's parameters, every one filled in (defaults included).
    public var parameters: [String: Double]

    public func parameter(_ name: String) -> Double { parameters[name] ?? 0 }
}

/// A fault as it really happened, for the report and the time line.
public struct FaultRecord: Sendable, Codable, Equatable {
    public let kind: String
    /// Seconds since the run started.
    public var start: Double
    public var end: Double?
    /// What it struck: a server and its process, client sessions, the gateway, clients.
    public var targets: [String]
    /// How many operations it struck, for the kinds that strike operations (pauses, crashes,
    /// failed compensations, gateway answers); nil for server faults.
    public var hits: Int?
    /// What it did, in words (e.g. what a failover did to the lock).
    public var note: String?
    /// Set when injecting or healing it failed.
    public var error: String?
    /// `redis-failover` only: what the failover did to the locks and fencing counters.
    public var failover: FailoverEffect? = nil

    enum CodingKeys: String, CodingKey {
        case kind, targets, hits, note, error, failover
        case start = "start_seconds"
        case end = "end_seconds"
    }
}

/// What a failover did to the Redis locks: compared between the old primary just before it died
/// and the promoted replica just after.
public struct FailoverEffect: Sendable, Codable, Equatable {
    /// Locks held on the old primary when it died.
    public var locksHeld: Int
    /// Of those, the ones the new primary does not have with the same holder: free to be taken
    /// again (or held by a stale entry that expires) while their holders still work.
    public var locksLost: Int
    public var lostExample: String?
    /// Fencing counters lower on the new primary than on the old one: it hands out tokens the
    /// database may already have accepted.
    public var fencingCountersRewound: Int
    /// e.g. `balance:user:1: 36 on the old primary, 27 on the new`.
    public var rewoundExample: String?

    enum CodingKeys: String, CodingKey {
        case locksHeld = "locks_held"
        case locksLost = "locks_lost"
        case lostExample = "lost_example"
        case fencingCountersRewound = "fencing_counters_rewound"
        case rewoundExample = "rewound_example"
    }
}

/// Everything a fault may act on.
final class FaultContext: @unchecked Sendable {
    let configuration: ServerConfiguration
    let shared: SharedServices
    let servers: ManagedServers?
    let gateway: SimulatedPaymentGateway
    let clients: ClientFaultSwitches
    let clock: @Sendable () -> Double
    /// A run through a target (issue 18): the target's database, whose sessions `pg-terminate`
    /// cuts (checked to be on the throwaway PostgreSQL); nil: LockProof's own clients' sessions.
    let targetDatabaseURL: String?

    init(
        configuration: ServerConfiguration, shared: SharedServices, servers: ManagedServers?,
        gateway: SimulatedPaymentGateway, clients: ClientFaultSwitches, clock: @escaping @Sendable () -> Double,
        targetDatabaseURL: String? = nil
    ) {
        self.targetDatabaseURL = targetDatabaseURL
        self.configuration = configuration
        self.shared = shared
        self.servers = servers
        self.gateway = gateway
        self.clients = clients
        self.clock = clock
    }
}

/// One kind of fault. `begin` injects it (a strike is a `begin` alone), `end` heals it; each
/// returns what it struck or did, and throws when it could not.
protocol FaultInjector: AnyObject {
    static var kind: FaultKind { get }
    static var timing: FaultTiming { get }
    static var parameters: [FaultParameter] { get }
    static var touchesServers: Bool { get }
    init(spec: FaultSpec, context: FaultContext)
    /// Called once before the run starts (e.g. start a replica); may throw to abort the run.
    func prepare() throws
    func begin(into record: inout FaultRecord) throws
    func end(into record: inout FaultRecord) throws
    /// Called once after the run, whatever happened: leave every server as it was found.
    func restore()
}

extension FaultInjector {
    func prepare() throws {}
    func end(into record: inout FaultRecord) throws {}
    func restore() {}
}

/// A fault that strikes from a client hook (placed by `ClientFaultSwitches.install`): while it is
/// active, its `rate` parameter is the share of the hook's calls that fail. Each kind's own file
/// says what fails and where; this is the switching on and off, and the counting, they share.
protocol ClientHookRateFault: FaultInjector {
    var spec: FaultSpec { get }
    var context: FaultContext { get }
    /// The record's target, given the share that fails (e.g. "20%").
    static func target(failing share: String) -> String
}

extension ClientHookRateFault {
    static var timing: FaultTiming { .window(durationRequired: true) }
    static var touchesServers: Bool { false }

    func begin(into record: inout FaultRecord) throws {
        context.clients.setRate(spec.parameter("rate"), of: Self.kind)
        record.targets = [Self.target(failing: "\(Int((spec.parameter("rate") * 100).rounded()))%")]
    }

    func end(into record: inout FaultRecord) throws {
        context.clients.setRate(0, of: Self.kind)
        record.hits = context.clients.hits(Self.kind)
    }

    func restore() { context.clients.setRate(0, of: Self.kind) }
}

/// Faults injected from inside the clients: every client's hooks read these switches.
final class ClientFaultSwitches: Sendable {
    private struct State {
        var generator: SeededGenerator
        /// `client-pause`: pauses still to inflict, and how long each lasts.
        var pausesLeft = 0
        var pauseSeconds = 0.0
        var pauseRecords: [FaultRecord] = []
        /// Rate-based hook faults (`crash-after-deduct`, `compensation-failure`): share of hook calls that fail.
        var rates: [FaultKind: Double] = [:]
        var counts: [FaultKind: Int] = [:]
    }

    private let state: Mutex<State>

    init(seed: UInt64) { state = Mutex(State(generator: SeededGenerator(seed: seed ^ 0xFA17))) }

    func armPauses(count: Int, seconds: Double) {
        state.withLock {
            $0.pausesLeft = count
            $0.pauseSeconds = seconds
        }
    }

    func disarmPauses() { state.withLock { $0.pausesLeft = 0 } }

    func setRate(_ rate: Double, of kind: FaultKind) { state.withLock { $0.rates[kind] = rate } }

    func hits(_ kind: FaultKind) -> Int { state.withLock { $0.counts[kind] ?? 0 } }

    /// The pauses inflicted so far, each as its own record.
    func takePauseRecords() -> [FaultRecord] {
        state.withLock { state in
            defer { state.pauseRecords = [] }
            return state.pauseRecords
        }
    }

    /// The rate is read under the lock: the nemesis sets it from its own thread.
    private func draw(_ kind: FaultKind) -> Bool {
        state.withLock { state in
            let rate = state.rates[kind] ?? 0
            guard rate > 0, rate >= 1 || Double.random(in: 0..<1, using: &state.generator) < rate else { return false }
            state.counts[kind, default: 0] += 1
            return true
        }
    }

    /// Takes one of the armed pauses, if any is left: its length.
    private func takePause() -> Double? {
        state.withLock { state in
            guard state.pausesLeft > 0 else { return nil }
            state.pausesLeft -= 1
            state.counts[.clientPause, default: 0] += 1
            return state.pauseSeconds
        }
    }

    /// Installs the hooks on one client.
    func install(on client: CommerceClient, index: Int, renewer: LeaseRenewer, clock: @escaping @Sendable () -> Double) {
        let box = UncheckedClient(client)
        client.faults.duringThink = { [self] in
            guard let held = box.client?.heldLock, let seconds = takePause() else { return }
            // A stalled process renews nothing: its lease runs out while it sleeps.
            renewer.suspend(held)
            let started = clock()
            LockProofLocking.sleep(seconds: seconds)
            let record = FaultRecord(
                kind: FaultKind.clientPause.rawValue, start: started, end: clock(),
                targets: ["client \(index) holding \(held.key) (fencing token \(held.fencingToken), lease \(held.leaseMilliseconds) ms)"],
                hits: 1, note: "stalled between its read and its write, then went on writing")
            state.withLock { $0.pauseRecords.append(record) }
        }
        client.faults.afterDeduction = { [self] orderId in
            if draw(.crashAfterDeduct) { throw ClientCrashed(point: "after the deduction of order \(orderId)") }
        }
        client.faults.beforeCompensationCommit = { [self] orderId in
            if draw(.compensationFailure) { throw InjectedCompensationFailure(orderId: orderId) }
        }
    }
}

/// `compensation-failure`: the compensation's transaction is lost before it commits (its
/// connection killed, or a lock timeout): it rolls back and stays pending.
public struct InjectedCompensationFailure: Error, CustomStringConvertible, Sendable {
    public let orderId: Int
    public var description: String { "injected fault: the compensation of order \(orderId) lost its transaction before commit" }
}

/// A client handed to a hook that runs on that client's own thread only.
/// Weak: the hook lives in the client, so a strong reference would be a cycle that keeps every
/// client (and its PostgreSQL and Redis connections) alive after its run.
private final class UncheckedClient: @unchecked Sendable {
    weak var client: CommerceClient?
    init(_ client: CommerceClient) { self.client = client }
}
