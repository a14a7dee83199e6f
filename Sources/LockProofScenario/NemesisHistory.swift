import Foundation

/// One line of the nemesis in a run's history (Jepsen's `:nemesis` process): a fault began or
/// ended. The nemesis is a process of its own beside the clients; checkers and the report's
/// timeline take the fault windows from these entries, not from the runner.
public struct NemesisEntry: Sendable, Codable, Equatable {
    public enum Phase: String, Sendable, Codable {
        case start, end
    }

    /// Always `nemesis`: what tells this line from a client's operation.
    public static let process = "nemesis"

    public let phase: Phase
    /// The fault kind (`redis-down`, `client-pause`, …).
    public let fault: String
    /// Seconds since the run began.
    public let time: Double
    /// What it struck (start).
    public let targets: [String]?
    /// Operations it struck, for the kinds that strike operations (end).
    public let hits: Int?
    public let note: String?
    /// Injecting or healing failed, or it never struck.
    public let error: String?

    public init(
        phase: Phase, fault: String, time: Double, targets: [String]? = nil, hits: Int? = nil, note: String? = nil,
        error: String? = nil
    ) {
        self.phase = phase
        self.fault = fault
        self.time = time
        self.targets = targets
        self.hits = hits
        self.note = note
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case process, phase, fault, targets, hits, note, error
        case time = "time_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard try c.decode(String.self, forKey: .process) == Self.process else {
            throw DecodingError.dataCorruptedError(forKey: .process, in: c, debugDescription: "not the nemesis")
        }
        phase = try c.decode(Phase.self, forKey: .phase)
        fault = try c.decode(String.self, forKey: .fault)
        time = try c.decode(Double.self, forKey: .time)
        targets = try c.decodeIfPresent([String].self, forKey: .targets)
        hits = try c.decodeIfPresent(Int.self, forKey: .hits)
        note = try c.decodeIfPresent(String.self, forKey: .note)
        error = try c.decodeIfPresent(String.self, forKey: .error)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.process, forKey: .process)
        try c.encode(phase, forKey: .phase)
        try c.encode(fault, forKey: .fault)
        try c.encode(time, forKey: .time)
        try c.encodeIfPresent(targets, forKey: .targets)
        try c.encodeIfPresent(hits, forKey: .hits)
        try c.encodeIfPresent(note, forKey: .note)
        try c.encodeIfPresent(error, forKey: .error)
    }

    /// The entries of a fault as it happened: its start, and its end when it ended (a fault that
    /// never struck has a start carrying the error and no end).
    public static func entries(of record: FaultRecord) -> [NemesisEntry] {
        guard let end = record.end else {
            return [NemesisEntry(phase: .start, fault: record.kind, time: record.start, targets: record.targets, hits: record.hits, note: record.note, error: record.error)]
        }
        return [
            NemesisEntry(phase: .start, fault: record.kind, time: record.start, targets: record.targets),
            NemesisEntry(phase: .end, fault: record.kind, time: end, hits: record.hits, note: record.note, error: record.error),
        ]
    }
}

/// A time span during which a fault was active, read from the nemesis' history entries.
public struct FaultWindow: Sendable, Equatable {
    public let fault: String
    public let start: Double
    /// Nil when the history has no end for it (it lasted to the run's end, or never struck).
    public let end: Double?

    public init(fault: String, start: Double, end: Double?) {
        self.fault = fault
        self.start = start
        self.end = end
    }

    /// Was the fault active at `time`?
    public func contains(_ time: Double) -> Bool { time >= start && time <= (end ?? .infinity) }

    /// Pairs each start with the next end of the same fault, in time order. At one instant a start
    /// comes before an end: a strike that starts and ends at the same time (a `pg-terminate` that
    /// finds its session at once) is a window of no length, and an end that came first would find
    /// no open start and be dropped, leaving a window that never ends (every later overlap of two
    /// lock holders excused as "during a fault", issue 21). Ends close the oldest open start, so a
    /// window that ends as the next one starts is still paired with its own end.
    public static func windows(_ entries: [NemesisEntry]) -> [FaultWindow] {
        var windows: [(fault: String, start: Double, end: Double?)] = []
        var indexOfOpen: [String: [Int]] = [:]
        for entry in entries.sorted(by: { ($0.time, $0.phase == .start ? 0 : 1) < ($1.time, $1.phase == .start ? 0 : 1) }) {
            switch entry.phase {
            case .start:
                indexOfOpen[entry.fault, default: []].append(windows.count)
                windows.append((entry.fault, entry.time, nil))
            case .end:
                guard var indices = indexOfOpen[entry.fault], !indices.isEmpty else { continue }
                let index = indices.removeFirst()
                indexOfOpen[entry.fault] = indices
                windows[index].end = entry.time
            }
        }
        return windows.map { FaultWindow(fault: $0.fault, start: $0.start, end: $0.end) }
    }
}

/// Reads the nemesis' entries of a run's `NAME.history.jsonl` (the clients' lines are skipped),
/// streaming: memory holds the nemesis' entries only.
public func readNemesisEntries(_ url: URL) throws -> [NemesisEntry] {
    let decoder = JSONDecoder()
    let marker = Data("\"process\":\"nemesis\"".utf8)
    var entries: [NemesisEntry] = []
    try forEachHistoryLine(url) { line in
        if line.range(of: marker) != nil, let entry = try? decoder.decode(NemesisEntry.self, from: line) { entries.append(entry) }
        return true
    }
    return entries
}
