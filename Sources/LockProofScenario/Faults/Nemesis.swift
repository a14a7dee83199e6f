import Foundation
import LockProofCommerce
import LockProofLocking
import LockProofSync

/// Schedules a scenario's faults on the run's clock, on a thread of its own: each window begins at
/// its `start` and ends after its `duration` (or when the run ends); each strike fires at `start`
/// and every `interval` after. The runner only starts and stops it. What really happened is kept
/// as `FaultRecord`s; a fault that never struck is an error, never a silent pass.
final class Nemesis: @unchecked Sendable {
    private struct Planned {
        let spec: FaultSpec
        let injector: any FaultInjector
        var strikes: [Double]
        var record: FaultRecord?
        var active = false
    }

    private let context: FaultContext
    private var planned: [Planned]
    private var finished: [FaultRecord] = []
    private let condition = WaitCondition()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    private var started = false

    init(_ faults: [FaultSpec], context: FaultContext) {
        self.context = context
        planned = faults.map { spec in
            var strikes: [Double] = []
            if case .strikes = spec.kind.injector.timing {
                let interval = spec.intervalSeconds ?? .infinity
                var time = spec.startSeconds
                let until = spec.startSeconds + (spec.durationSeconds ?? 0)
                repeat {
                    strikes.append(time)
                    time += interval
                } while time < until && strikes.count < 10_000
            }
            return Planned(spec: spec, injector: spec.kind.injector.init(spec: spec, context: context), strikes: strikes)
        }
    }

    /// Before the barrier: what the faults need in place (a synchronised replica, a session).
    func prepare() throws {
        for item in planned { try item.injector.prepare() }
    }

    func start() {
        guard !planned.isEmpty else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = "lockproof-nemesis"
        thread.start()
    }

    private func nextEvent() -> (time: Double, index: Int, isEnd: Bool)? {
        var best: (Double, Int, Bool)?
        for (index, item) in planned.enumerated() {
            var candidates: [(Double, Bool)] = []
            switch item.spec.kind.injector.timing {
            case .strikes:
                if let first = item.strikes.first { candidates.append((first, false)) }
            case .window:
                if item.record == nil { candidates.append((item.spec.startSeconds, false)) }
                if item.active, let duration = item.spec.durationSeconds {
                    candidates.append((item.spec.startSeconds + duration, true))
                }
            }
            for (time, isEnd) in candidates where best == nil || time < best!.0 { best = (time, index, isEnd) }
        }
        return best
    }

    private func loop() {
        defer { done.signal() }
        while true {
            condition.lock()
            guard let event = nextEvent() else {
                while !stopping { condition.wait() }
                condition.unlock()
                return
            }
            while !stopping && context.clock() < event.time {
                _ = condition.wait(until: Date(timeIntervalSinceNow: max(0.001, event.time - context.clock())))
            }
            if stopping {
                condition.unlock()
                return
            }
            condition.unlock()
            fire(event.index, isEnd: event.isEnd)
        }
    }

    private func fire(_ index: Int, isEnd: Bool) {
        var item = planned[index]
        let now = context.clock()
        if isEnd {
            var record = item.record!
            do { try item.injector.end(into: &record) } catch { record.error = "healing failed: \(error)" }
            record.end = context.clock()
            item.active = false
            item.record = record
        } else if case .strikes = item.spec.kind.injector.timing {
            item.strikes.removeFirst()
            var record = FaultRecord(kind: item.spec.kind.rawValue, start: now, end: nil, targets: [], hits: nil, note: nil, error: nil)
            do { try item.injector.begin(into: &record) } catch { record.error = "injecting failed: \(error)" }
            if record.end == nil { record.end = context.clock() }
            condition.lock()
            finished.append(record)
            condition.unlock()
        } else {
            var record = FaultRecord(kind: item.spec.kind.rawValue, start: now, end: nil, targets: [], hits: nil, note: nil, error: nil)
            do {
                try item.injector.begin(into: &record)
                item.active = true
            } catch {
                record.error = "injecting failed: \(error)"
                record.end = context.clock()
            }
            item.record = record
        }
        condition.lock()
        planned[index] = item
        condition.unlock()
    }

    /// After the clients finished: ends every fault still active, restores every server, and
    /// returns what happened, in order of start. `runSeconds` names faults the run never reached.
    func stop(runSeconds: Double) -> [FaultRecord] {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        if started { done.wait() }
        var records = finished
        for index in planned.indices {
            var item = planned[index]
            if item.active, var record = item.record {
                do { try item.injector.end(into: &record) } catch { record.error = "healing failed: \(error)" }
                record.end = context.clock()
                item.record = record
                item.active = false
            }
            item.injector.restore()
            if let record = item.record {
                records.append(record)
            } else if case .window = item.spec.kind.injector.timing {
                records.append(
                    FaultRecord(
                        kind: item.spec.kind.rawValue, start: item.spec.startSeconds, end: nil, targets: [], hits: nil, note: nil,
                        error: "never struck: the run ended at \(formatSeconds(runSeconds)) s, before its start at \(formatSeconds(item.spec.startSeconds)) s"))
            }
            if case .strikes = item.spec.kind.injector.timing, !records.contains(where: { $0.kind == item.spec.kind.rawValue }) {
                records.append(
                    FaultRecord(
                        kind: item.spec.kind.rawValue, start: item.spec.startSeconds, end: nil, targets: [], hits: nil, note: nil,
                        error: "never struck: the run ended at \(formatSeconds(runSeconds)) s, before its start at \(formatSeconds(item.spec.startSeconds)) s"))
            }
            planned[index] = item
        }
        records += context.clients.takePauseRecords()
        // A fault that strikes operations and struck none proves nothing: say so.
        for index in records.indices where records[index].error == nil {
            let kind = FaultKind(rawValue: records[index].kind)
            let strikesOperations: Set<FaultKind> = [.clientPause, .crashAfterDeduct, .compensationFailure, .gatewayFailure]
            if let kind, strikesOperations.contains(kind), records[index].hits == 0 {
                records[index].error = "never struck: no operation reached it during the fault (\(records[index].targets.joined(separator: "; ")))"
            }
        }
        let pgStrikes = records.filter { $0.kind == FaultKind.pgTerminate.rawValue && $0.error == nil }
        if !pgStrikes.isEmpty, pgStrikes.allSatisfy({ ($0.hits ?? 0) == 0 }), let first = records.firstIndex(where: { $0.kind == FaultKind.pgTerminate.rawValue }) {
            records[first].error = "never struck: no client session was found to terminate"
        }
        return records.sorted { ($0.start, $0.kind) < ($1.start, $1.kind) }
    }
}

func formatSeconds(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
