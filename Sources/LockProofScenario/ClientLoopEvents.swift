import Foundation
import LockProofCommerce
import LockProofLocking

/// The event-driven engine of `ClientLoop` (issue 18): a few loop threads (one by default), each
/// driving many virtual users' `EventDrivenClient`s with an `EventLoop`. Every semantic of the
/// thread-per-user loop is kept: one start instant (each loop thread is a party of the barrier),
/// iterations and duration, stop requests, `FailureBackoff` pauses (timers, not sleeps),
/// follow-ups, the same history, statistics, observer and progress, and the client CPU (the
/// loop threads' own).
extension ClientLoop {
    /// One loop thread by default: a request costs the loop a few microseconds, so one thread keeps
    /// thousands of users busy, and on a small machine the other cores are the server's.
    public static let defaultLoopThreads = 1

    /// Starts `loopThreads` loop threads; each makes and opens the clients of its users
    /// (`index mod loopThreads`), then waits at the barrier.
    func startEventDriven(loopThreads: Int, makeClient: @escaping @Sendable (_ index: Int) throws -> any EventDrivenClient) {
        let virtualUsers = scenario.workload.virtualUsers[0]
        let loops = max(1, min(loopThreads, virtualUsers))
        barrier = StartBarrier(parties: loops + 1)
        for loopIndex in 0..<loops {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                runLoopThread(loopIndex, loops: loops, virtualUsers: virtualUsers, makeClient: makeClient)
            }
            thread.name = "lockproof-loop-\(loopIndex)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func runLoopThread(
        _ loopIndex: Int, loops: Int, virtualUsers: Int, makeClient: (_ index: Int) throws -> any EventDrivenClient
    ) {
        var eventLoop: EventLoop?
        var users: [EventDrivenUser] = []
        do {
            let made = try EventLoop()
            eventLoop = made
            for index in stride(from: loopIndex, to: virtualUsers, by: loops) {
                do {
                    let client = try makeClient(index)
                    try client.open(on: made)
                    users.append(
                        EventDrivenUser(
                            index: index, client: client, generator: OperationGenerator(client: index, scenario: scenario, initial: initial)))
                } catch {
                    setupErrors.mutate { $0.append("client \(index): \(error)") }
                }
            }
        } catch {
            setupErrors.mutate { $0.append("loop thread \(loopIndex): \(error)") }
        }
        barrier.arriveAndWait()
        defer { users.forEach { $0.client.close() } }
        guard let eventLoop else { return }
        EventDrivenUsers(owner: self, loop: eventLoop, users: users).run()
    }
}

/// One virtual user of an event-driven run: where it is in its operations.
final class EventDrivenUser {
    let index: Int
    let client: any EventDrivenClient
    var generator: OperationGenerator
    var backoff = FailureBackoff()
    var iteration = 0
    /// The pause before the next iteration, from the last completion (a dead server).
    var pause = 0.0
    var pauseTimer: Int?
    var finished = false

    init(index: Int, client: any EventDrivenClient, generator: OperationGenerator) {
        self.index = index
        self.client = client
        self.generator = generator
    }
}

/// The users of one loop thread, as state machines: next invocation -> the client's request ->
/// completion recorded -> follow-up, pause or next iteration, until iterations, duration or a stop.
final class EventDrivenUsers {
    private let owner: ClientLoop
    private let loop: EventLoop
    private let users: [EventDrivenUser]
    private var active = 0
    private var stopping = false
    private let started: Double
    private let deadline: Double?
    private let iterations: Int?

    init(owner: ClientLoop, loop: EventLoop, users: [EventDrivenUser]) {
        self.owner = owner
        self.loop = loop
        self.users = users
        started = owner.clockStart.value
        deadline = owner.scenario.workload.durationSeconds.map { owner.clockStart.value + $0 }
        iterations = owner.scenario.workload.iterations
    }

    private func clock() -> Double { monotonicSeconds() - started }

    func run() {
        let usageStart = ThreadUsage.now()
        active = users.count
        for user in users { begin(user) }
        loop.run(until: { active == 0 }, tick: { if !stopping && owner.mustStop() { stopPaused() } })
        let usage = ThreadUsage.now()
        let most = users.map(\.iteration).max() ?? 0
        owner.totals.mutate {
            $0.cpuSeconds += usage.cpuSeconds - usageStart.cpuSeconds
            $0.contextSwitches += usage.contextSwitches - usageStart.contextSwitches
            $0.mostIterations = max($0.mostIterations, most)
        }
    }

    /// A stop: users waiting out a pause end now; those with a request out end at its completion.
    private func stopPaused() {
        stopping = true
        for user in users {
            guard let timer = user.pauseTimer else { continue }
            loop.cancel(timer: timer)
            user.pauseTimer = nil
            finish(user)
        }
    }

    private func finish(_ user: EventDrivenUser) {
        guard !user.finished else { return }
        user.finished = true
        active -= 1
    }

    /// The user's next iteration, or its end.
    private func begin(_ user: EventDrivenUser) {
        if let iterations, user.iteration >= iterations { return finish(user) }
        if let deadline, monotonicSeconds() >= deadline { return finish(user) }
        if owner.mustStop() { return finish(user) }
        user.pause = 0
        invoke(user, user.generator.next(user.iteration))
    }

    private func invoke(_ user: EventDrivenUser, _ invocation: Invocation) {
        let start = clock()
        user.client.start(invocation) { [self] completion in
            let entry = HistoryEntry(client: user.index, index: user.iteration, invocation, start: start, end: clock(), completion)
            owner.record(entry, completion.outcome)
            user.pause = user.backoff.delay(after: entry)
            if let next = user.generator.followUp(after: invocation, completion: completion) {
                invoke(user, next)
                return
            }
            user.iteration += 1
            if user.pause > 0 && !stopping {
                // A user hammering a dead server waits a little, never past the deadline.
                let until = min(monotonicSeconds() + user.pause, deadline ?? .infinity)
                user.pauseTimer = loop.timer(at: until) { [self] in
                    user.pauseTimer = nil
                    begin(user)
                }
            } else {
                begin(user)
            }
        }
    }
}
