import Foundation
import LockProofCommerce
import Synchronization

/// Jepsen's three endings of an operation.
public enum HistoryOutcome: String, Sendable, Codable {
    /// Acknowledged: it happened.
    case ok
    /// It did not happen (refused or failed before commit).
    case fail
    /// It may or may not have happened: checkers widen their bounds for it.
    case unknown
}

/// One operation as a client saw it.
public struct HistoryEntry: Sendable, Codable, Equatable {
    public let client: Int
    /// The client's n-th operation, from 0.
    public let index: Int
    /// `charge`, `pay`, `issue`, `create`, `complete`, `cancel`, `add`.
    public let operation: OperationName
    /// Ids and amounts it was called with (`user`, `order`, `coupon`, `product`, `amount`, `quantity`).
    public let arguments: [String: Int]
    /// Order lines, for `create` and `pay`.
    public let items: [OrderItemRequest]?
    /// Seconds since the run started.
    public let start: Double
    public let end: Double
    public let outcome: HistoryOutcome
    /// The typed reason of a `fail` or `unknown` (e.g. `insufficient_balance`, `deadlock`).
    public let reason: String?
    /// What an `ok` returned that checkers need (e.g. the created `order`, the order `total`).
    public let result: [String: Int]?
    /// The idempotency key it was sent with, if any: an "already applied" answer is only right
    /// when another operation applied that key.
    public let key: String?

    public var seconds: Double { end - start }

    /// One line of `NAME.history.jsonl` (docs/schemas/history-entry.schema.json): snake_case,
    /// times in seconds since the run began.
    enum CodingKeys: String, CodingKey {
        case client, index, operation, arguments, items, outcome, reason, result, key
        case start = "start_seconds"
        case end = "end_seconds"
    }

    public init(
        client: Int, index: Int, operation: OperationName, arguments: [String: Int], items: [OrderItemRequest]?, start: Double,
        end: Double, outcome: HistoryOutcome, reason: String?, result: [String: Int]?, key: String? = nil
    ) {
        self.client = client
        self.index = index
        self.operation = operation
        self.arguments = arguments
        self.items = items
        self.start = start
        self.end = end
        self.outcome = outcome
        self.reason = reason
        self.result = result
        self.key = key
    }
}

/// How many operations ended each way, and why the others did not succeed: what the reports show
/// of a history, counted as it is recorded (a bounded set of reasons, never the entries).
public struct OperationTally: Sendable, Equatable {
    public private(set) var ok = 0
    public private(set) var fail = 0
    public private(set) var unknown = 0
    /// `fail` and `unknown` by reason, e.g. `["sold_out": 100]`.
    public private(set) var reasons: [String: Int] = [:]

    public init() {}

    public var total: Int { ok + fail + unknown }

    public func count(_ outcome: HistoryOutcome) -> Int {
        switch outcome {
        case .ok: return ok
        case .fail: return fail
        case .unknown: return unknown
        }
    }

    mutating func add(_ entry: HistoryEntry) {
        switch entry.outcome {
        case .ok: ok += 1
        case .fail: fail += 1
        case .unknown: unknown += 1
        }
        if entry.outcome != .ok { reasons[entry.reason ?? "unknown", default: 0] += 1 }
    }
}

/// Records a run's history without keeping it: every entry is appended to `NAME.history.jsonl`
/// (one JSON object a line, in the order the operations finished; the Redis lock holds' grants and
/// releases between them, as the lock code reported them) through a small buffer, handed
/// to the checkers that read its operation, and counted. Memory stays flat however long the run.
/// The nemesis' entries (fault start and end) go to the same file and to every checker, and are
/// kept: they are few, and they give the fault windows.
public final class HistoryRecorder: @unchecked Sendable {
    /// Bytes buffered before a write to the file.
    static let bufferLimit = 1 << 16

    /// What the clients and the nemesis share, behind one `Mutex`.
    private struct State {
        let file: FileHandle?
        let path: String
        var tally = OperationTally()
        var buffer = Data()
        var failure: String?
        /// After `finish`, late entries (of a client abandoned in a hang) are dropped: the
        /// checkers are judging by then.
        var closed = false
        var nemesis: [NemesisEntry] = []
    }

    private let state: Mutex<State>
    /// Called only inside `state.withLock`: never two calls at once (the checkers' contract).
    private let checkersByOperation: [OperationName: [any Checker]]
    private let checkers: [any Checker]
    /// The checkers that read the lock holds (`LockEntry`).
    private let lockCheckers: [any LockHoldChecker]
    private let hasFile: Bool
    public let fileURL: URL?
    /// Encodes on the caller's thread, outside the lock every client shares.
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// Creates (truncates) `file` when given; without one, entries are only checked and counted.
    public init(checkers: [any Checker], file: URL?) throws {
        var byOperation: [OperationName: [any Checker]] = [:]
        for checker in checkers {
            for operation in checker.operations { byOperation[operation, default: []].append(checker) }
        }
        checkersByOperation = byOperation
        self.checkers = checkers
        lockCheckers = checkers.compactMap { $0 as? any LockHoldChecker }
        fileURL = file
        var handle: FileHandle?
        if let file {
            do {
                handle = try ReportFile.create(named: file.lastPathComponent, in: file.deletingLastPathComponent())
            } catch {
                throw RunAborted(message: "cannot create \(file.path): \(error)")
            }
        }
        hasFile = handle != nil
        var initial = State(file: handle, path: file?.path ?? "")
        initial.buffer.reserveCapacity(Self.bufferLimit + 4096)
        state = Mutex(initial)
    }

    private func line(_ value: some Encodable) -> Data? {
        guard hasFile else { return nil }
        var line = (try? encoder.encode(value)) ?? Data("{}".utf8)
        line.append(0x0A)
        return line
    }

    /// From any client thread.
    public func record(_ entry: HistoryEntry) {
        let line = line(entry)
        state.withLock { state in
            guard !state.closed else { return }
            state.tally.add(entry)
            for checker in checkersByOperation[entry.operation] ?? [] { checker.observe(entry) }
            Self.append(line, to: &state)
        }
    }

    /// A fault's start or end, from the nemesis (Jepsen's `:nemesis` process).
    public func record(_ entry: NemesisEntry) {
        let line = line(entry)
        state.withLock { state in
            guard !state.closed else { return }
            state.nemesis.append(entry)
            for checker in checkers { checker.observe(entry) }
            Self.append(line, to: &state)
        }
    }

    /// A Redis lock's grant or release, from the lock code of the client that held it (process
    /// `lock`): to the file and to the checkers that read holds, not counted as an operation.
    public func record(_ entry: LockEntry) {
        let line = line(entry)
        state.withLock { state in
            guard !state.closed else { return }
            for checker in lockCheckers { checker.observe(entry) }
            Self.append(line, to: &state)
        }
    }

    private static func append(_ line: Data?, to state: inout State) {
        guard let line, state.failure == nil else { return }
        state.buffer.append(line)
        if state.buffer.count >= bufferLimit { flush(&state) }
    }

    private static func flush(_ state: inout State) {
        guard let file = state.file, !state.buffer.isEmpty, state.failure == nil else { return }
        do {
            try file.write(contentsOf: state.buffer)
        } catch {
            state.failure = "the history could not be written to \(state.path): \(error)"
        }
        state.buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and closes the file. Returns why the file is incomplete, if it is.
    @discardableResult
    public func finish() -> String? {
        state.withLock { state -> String? in
            guard !state.closed else { return state.failure }
            Self.flush(&state)
            state.closed = true
            try? state.file?.close()
            return state.failure
        }
    }

    public var operations: OperationTally { state.withLock { $0.tally } }

    /// The nemesis' entries recorded so far, and the fault windows they make.
    public var nemesisEntries: [NemesisEntry] { state.withLock { $0.nemesis } }
    public var faultWindows: [FaultWindow] { FaultWindow.windows(nemesisEntries) }

    /// Bytes of history held in memory right now (at most about `bufferLimit`).
    public var bufferedBytes: Int { state.withLock { $0.buffer.count } }
}
