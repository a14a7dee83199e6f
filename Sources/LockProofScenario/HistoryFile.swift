import Foundation

/// A history file that could not be read back.
public struct HistoryReadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Reads a run's `NAME.history.jsonl` back, keeping only the entries `keep` accepts and at most
/// `limit` of them, so that memory stays bounded however long the run was. The nemesis' lines
/// (`readNemesisEntries`) are not operations and are skipped.
public func readHistory(_ url: URL, limit: Int = 100_000, keep: (HistoryEntry) -> Bool = { _ in true }) throws -> [HistoryEntry] {
    let decoder = JSONDecoder()
    var entries: [HistoryEntry] = []
    try forEachHistoryLine(url) { line in
        if let entry = try? decoder.decode(HistoryEntry.self, from: line), keep(entry) { entries.append(entry) }
        return entries.count < limit
    }
    return entries
}

/// Hands every line of a history file to `body`, in chunks (bounded memory), until it returns false.
func forEachHistoryLine(_ url: URL, _ body: (Data) -> Bool) throws {
    guard let handle = FileHandle(forReadingAtPath: url.path) else {
        throw HistoryReadError(message: "cannot read the history \(url.path)")
    }
    defer { try? handle.close() }
    var pending = Data()
    while true {
        let chunk = handle.readData(ofLength: 1 << 16)
        if chunk.isEmpty { break }
        pending.append(chunk)
        while let newline = pending.firstIndex(of: 0x0A) {
            let line = pending[pending.startIndex..<newline]
            pending = Data(pending[(newline + 1)...])
            if !body(Data(line)) { return }
        }
    }
}
