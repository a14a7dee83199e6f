import Foundation
import LockProofScenario

/// Reads a run's `NAME.history.jsonl` back, keeping only the entries `keep` accepts and at most
/// `limit` of them, so that memory stays bounded however long the run was.
func readHistory(_ url: URL, limit: Int = 100_000, keep: (HistoryEntry) -> Bool = { _ in true }) throws -> [HistoryEntry] {
    guard let handle = FileHandle(forReadingAtPath: url.path) else {
        throw BenchError("cannot read the history \(url.path)")
    }
    defer { try? handle.close() }
    let decoder = JSONDecoder()
    var entries: [HistoryEntry] = []
    var pending = Data()
    while entries.count < limit {
        let chunk = handle.readData(ofLength: 1 << 16)
        if chunk.isEmpty { break }
        pending.append(chunk)
        while let newline = pending.firstIndex(of: 0x0A) {
            let line = pending[pending.startIndex..<newline]
            pending = Data(pending[(newline + 1)...])
            if let entry = try? decoder.decode(HistoryEntry.self, from: line), keep(entry) {
                entries.append(entry)
                if entries.count >= limit { break }
            }
        }
    }
    return entries
}

/// A folder for the histories of the benchmark's own runs, removed when the process ends.
func temporaryHistoryDirectory() throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("lockproof-bench-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
