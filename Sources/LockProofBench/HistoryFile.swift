import Foundation

/// A new private folder (mkdtemp: mode 0700, never one that already exists) for the benchmark's
/// own histories and work files; its users remove it.
func temporaryHistoryDirectory() throws -> URL {
    var template = Array((URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("lockproof-bench-XXXXXX").path).utf8CString)
    guard let made = mkdtemp(&template) else { throw BenchError("cannot create a temporary folder: errno \(errno)") }
    return URL(fileURLWithPath: String(cString: made), isDirectory: true)
}
