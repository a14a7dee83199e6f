import Foundation
import LockProofCommerce
import LockProofLocking
import Synchronization

/// The clients of one run, each on a thread of its own (or, event-driven, many on a few loop
/// threads: ClientLoopEvents.swift), released together at one barrier. Each asks its generator
/// for the next operation, has its `Client` perform it and records the completion in the
/// history; nothing here knows how an operation is performed.
final class ClientLoop: @unchecked Sendable {
    /// How the clients' part of a run ended.
    struct Ending {
        /// Every client finished (none abandoned in a hang or an interruption).
        let finished: Bool
        let interruption: String?
        /// From the barrier to the end of the wait.
        let seconds: Double
        /// Clients that could not be made (`client 3: …`).
        let setupErrors: [String]
        /// The bound the run was given: duration + workload.timeout.
        let limitSeconds: Double
    }

    let scenario: Scenario
    let initial: InitialState
    private let history: HistoryRecorder
    private let statistics: RunStatistics
    private let progress: ProgressReporter
    private let stop: StopRequest
    private let observer: (@Sendable (CaseName, String, OperationOutcome, Double) -> Void)?
    /// Each operation reports under its own case and strategy (a mix has several).
    private let labels: [OperationName: (CaseName, String)]
    let clockStart = LockedValue(0.0)
    /// One party per client thread (per loop thread, event-driven) and the releasing thread.
    var barrier: StartBarrier
    let group = DispatchGroup()
    let setupErrors = LockedValue<[String]>([])
    let totals = LockedValue(ClientLoopTotals())
    /// Set when the clients must stop: an interruption, a hang the runner gave up on.
    private let clientsStop = LockedValue(false)
    /// How long an interrupted run waits for its clients before it reports without them.
    static let stopGraceSeconds = 0.8

    init(
        scenario: Scenario, initial: InitialState, history: HistoryRecorder, statistics: RunStatistics, progress: ProgressReporter,
        stop: StopRequest, observer: (@Sendable (CaseName, String, OperationOutcome, Double) -> Void)?
    ) {
        self.scenario = scenario
        self.initial = initial
        self.history = history
        self.statistics = statistics
        self.progress = progress
        self.stop = stop
        self.observer = observer
        var labels = Dictionary(uniqueKeysWithValues: scenario.operations.map { ($0.operation, ($0.caseName, $0.strategy)) })
        for next in scenario.followUps where labels[next] == nil { labels[next] = (next.caseName, Scenario.followUpStrategy) }
        self.labels = labels
        barrier = StartBarrier(parties: scenario.workload.virtualUsers[0] + 1)
    }

    /// Seconds since the barrier released the clients (the run's clock; the nemesis uses it too).
    var clock: @Sendable () -> Double {
        let clockStart = clockStart
        return { monotonicSeconds() - clockStart.value }
    }

    /// The monotonic second the barrier released the clients (the run's clock reads 0 then).
    var origin: @Sendable () -> Double {
        let clockStart = clockStart
        return { clockStart.value }
    }

    /// Starts one thread per virtual user: each makes and opens its client (`makeClient`, on its
    /// own thread), then waits at the barrier.
    func start(makeClient: @escaping @Sendable (_ index: Int) throws -> any Client) {
        for index in 0..<scenario.workload.virtualUsers[0] {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                var made: (any Client)?
                do {
                    made = try makeClient(index)
                } catch {
                    setupErrors.mutate { $0.append("client \(index): \(error)") }
                }
                barrier.arriveAndWait()
                guard let client = made else { return }
                defer { client.close() }
                runClient(index, client)
            }
            thread.name = "lockproof-vu-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    func mustStop() -> Bool { clientsStop.value || stop.reason != nil || setupErrors.value.count > 0 }

    /// One client's operations, until its iterations, the run's duration or a stop.
    private func runClient(_ index: Int, _ client: any Client) {
        let workload = scenario.workload
        var generator = OperationGenerator(client: index, scenario: scenario, initial: initial)
        let started = clockStart.value
        let clock = { monotonicSeconds() - started }
        let deadline = workload.durationSeconds.map { started + $0 }
        var backoff = FailureBackoff()
        var iteration = 0
        // The client's own CPU time over its operations (the benchmark compares it with pgbench's).
        let usageStart = ThreadUsage.now()
        defer {
            let usage = ThreadUsage.now()
            totals.mutate {
                $0.cpuSeconds += usage.cpuSeconds - usageStart.cpuSeconds
                $0.contextSwitches += usage.contextSwitches - usageStart.contextSwitches
                $0.mostIterations = max($0.mostIterations, iteration)
            }
        }
        while true {
            if let iterations = workload.iterations, iteration >= iterations { break }
            if let deadline, monotonicSeconds() >= deadline { break }
            if mustStop() { break }
            let pause = perform(iteration, index, client, &generator, &backoff, clock)
            iteration += 1
            if pause > 0 {
                // A client hammering a dead server: wait a little, never past the deadline.
                let until = min(monotonicSeconds() + pause, deadline ?? .infinity)
                while monotonicSeconds() < until && !mustStop() { Thread.sleep(forTimeInterval: min(0.01, pause)) }
            }
        }
    }

    /// One iteration of a client: the generator's operation (and its follow-up), performed by the
    /// client and recorded. Returns how long to pause before the next (a dead server). Its own
    /// function so that `scripts/profile-client.sh` can count what one operation costs.
    @inline(never)
    func perform(
        _ iteration: Int, _ index: Int, _ client: any Client, _ generator: inout OperationGenerator, _ backoff: inout FailureBackoff,
        _ clock: () -> Double
    ) -> Double {
        var pause = 0.0
        var invocation: Invocation? = generator.next(iteration)
        while let current = invocation {
            let start = clock()
            let completion = client.invoke(current)
            let entry = HistoryEntry(client: index, index: iteration, current, start: start, end: clock(), completion)
            record(entry, completion.outcome)
            pause = backoff.delay(after: entry)
            invocation = generator.followUp(after: current, completion: completion)
        }
        return pause
    }

    func record(_ entry: HistoryEntry, _ outcome: OperationOutcome) {
        history.record(entry)
        statistics.recordOperation(outcome: outcome, seconds: entry.seconds)
        if entry.operation == .pay && (entry.outcome == .ok || entry.reason == "payment_declined") {
            statistics.countGatewayCall()
        }
        if let observer, let (caseName, strategy) = labels[entry.operation] {
            observer(caseName, strategy, outcome, entry.seconds)
        }
        progress.operationFinished(failed: outcome == .error || outcome == .unknown)
    }

    /// Releases the clients at the barrier, calls `released` (the nemesis starts), and waits for
    /// them: until they finish, a stop request (plus a short grace), or duration + timeout.
    func release(_ released: () -> Void) -> Ending {
        let workload = scenario.workload
        let virtualUsers = workload.virtualUsers[0]
        let expected = workload.iterations.map { $0 * virtualUsers * (workload.payAfterCreate ? 2 : 1) }
        progress.begin(scenario: scenario.name, expectedOperations: expected, durationSeconds: workload.durationSeconds)
        clockStart.set(monotonicSeconds())
        barrier.arriveAndWait()
        released()
        let limit = (workload.durationSeconds ?? 0) + workload.timeoutSeconds
        let giveUp = clockStart.value + limit
        var finished = false
        var interruption: String?
        while true {
            if group.wait(timeout: .now() + 0.1) == .success {
                finished = true
                break
            }
            if let reason = stop.reason {
                interruption = reason
                clientsStop.set(true)
                finished = group.wait(timeout: .now() + Self.stopGraceSeconds) == .success
                break
            }
            if monotonicSeconds() >= giveUp { break }
        }
        // Clients that saw the request stop early and the group finishes: still an interruption.
        if interruption == nil, let reason = stop.reason { interruption = reason }
        let seconds = monotonicSeconds() - clockStart.value
        progress.end()
        if finished {
            let loops = totals.value
            statistics.setGauge(RunStatistics.clientCPUSeconds, loops.cpuSeconds)
            statistics.setGauge(RunStatistics.clientContextSwitches, Double(loops.contextSwitches))
            statistics.setGauge(RunStatistics.clientIterationsMost, Double(loops.mostIterations))
        }
        clientsStop.set(true)
        return Ending(finished: finished, interruption: interruption, seconds: seconds, setupErrors: setupErrors.value, limitSeconds: limit)
    }
}

/// What the clients' loops did, summed when each ends.
struct ClientLoopTotals {
    /// CPU time of the client threads between the start barrier and their last operation.
    var cpuSeconds = 0.0
    /// Times those threads gave up the CPU (waiting for a server) or were made to, meanwhile.
    var contextSwitches = 0
    /// Operations of the client that did most (its slots reach `clients × mostIterations`).
    var mostIterations = 0
}

/// The calling thread's CPU time (user + system) and context switches so far.
struct ThreadUsage {
    let cpuSeconds: Double
    let contextSwitches: Int

    static func now() -> ThreadUsage {
        var usage = rusage()
        // RUSAGE_THREAD (Linux): this thread alone.
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return ThreadUsage(cpuSeconds: 0, contextSwitches: 0) }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ThreadUsage(
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), contextSwitches: usage.ru_nvcsw + usage.ru_nivcsw)
    }
}

/// Pauses a client whose operations keep failing the same way against an unavailable server
/// (a connection refused, Redis down): without it a dead server is hammered at tens of
/// thousands of failures a second. Business refusals and contention (sold out, conflicts,
/// deadlocks, lock timeouts) never pause: they are what scenarios measure.
struct FailureBackoff {
    /// Reasons that say the server is not answering.
    static let unavailable: Set<String> = ["connection_lost", "connection_failed", "redis_error", "database_error", "error"]
    /// Identical failures in a row before the first pause.
    static let tolerated = 3
    static let firstPause = 0.001
    static let longestPause = 0.1

    private var lastReason: String?
    private var repeats = 0

    /// Seconds to wait before the client's next operation.
    mutating func delay(after entry: HistoryEntry) -> Double {
        guard entry.outcome != .ok, let reason = entry.reason, Self.unavailable.contains(reason) else {
            lastReason = nil
            repeats = 0
            return 0
        }
        repeats = reason == lastReason ? repeats + 1 : 1
        lastReason = reason
        guard repeats > Self.tolerated else { return 0 }
        let doublings = min(repeats - Self.tolerated - 1, 16)
        return min(Self.firstPause * Double(1 << doublings), Self.longestPause)
    }
}

/// A value shared between threads, behind a `Mutex`.
final class LockedValue<T: Sendable>: Sendable {
    private let state: Mutex<T>
    init(_ value: T) { state = Mutex(value) }
    var value: T { state.withLock { $0 } }
    func set(_ value: T) { state.withLock { $0 = value } }
    func mutate(_ change: (inout T) -> Void) { state.withLock { change(&$0) } }
}
