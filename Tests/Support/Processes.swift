import Foundation
import LockProofSync

#if canImport(Glibc)
    import Glibc
#endif

/// Launching the programs the tests run: LockProof's own built binaries (found one way, in the
/// build folder `swift test` builds them into) and the tools on PATH (promtool, redis-server).

/// The checkout root, found from this file's path (Tests/Support/…).
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }
}

/// LockProof's built executables (`lockproof`, `lockproof-fuzz`): in the build folder, next to the
/// test product, since `swift test` builds every product before it runs the tests. A missing one
/// fails the test that needs it, saying how to build it: never a skip, so a suite that did not
/// build its binaries cannot pass by running none of their tests.
public enum BuiltBinary {
    /// The build folder: where the test product sits (`.build/<triple>/debug` on Linux).
    public static let folder: URL = {
        #if os(macOS)
            // An .xctest bundle run by Xcode's xctest tool.
            if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
                return bundle.bundleURL.deletingLastPathComponent()
            }
        #endif
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }()

    /// Where the executable `name` is when it is built (it may not be).
    public static func location(_ name: String) -> URL { folder.appendingPathComponent(name) }

    /// The executable `name`; throws `BinaryNotBuilt` (a test failure, with the command that builds it) when missing.
    public static func require(_ name: String) throws -> URL {
        let url = location(name)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
            FileManager.default.isExecutableFile(atPath: url.path)
        else { throw BinaryNotBuilt(name: name, path: url.path) }
        return url
    }

    /// The `lockproof` CLI.
    public static func lockproof() throws -> URL { try require("lockproof") }
}

public struct BinaryNotBuilt: Error, CustomStringConvertible {
    public let name: String
    public let path: String
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
    public var description: String {
        "\(name) is not built at \(path): build it with `swift build` (`swift test` builds every product first; `swift test --skip-build` does not)"
    }
}

/// What a launched program did: its exit status and what it printed on each stream.
public struct Launched: Sendable {
    public let status: Int32
    public let out: String
    public let err: String
}

/// Runs `executable` to completion, bounded: `environment` laid over this process's own, stdout and
/// stderr read on threads of their own (a full pipe never blocks it); a program still running after
/// `timeoutSeconds` is killed and `ProgramTimedOut` thrown (a hang fails the test instead of blocking it).
public func launch(
    _ executable: URL, _ arguments: [String], environment: [String: String] = [:], timeoutSeconds: Double = 300
) throws -> Launched {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    let outText = OutputCollector(), errText = OutputCollector()
    Thread { outText.set(out.fileHandleForReading.readDataToEndOfFile()) }.start()
    Thread { errText.set(err.fileHandleForReading.readDataToEndOfFile()) }.start()
    if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        kill(process.processIdentifier, SIGKILL)
        throw ProgramTimedOut(program: "\(executable.lastPathComponent) \(arguments.first ?? "")", seconds: timeoutSeconds)
    }
    return Launched(status: process.terminationStatus, out: outText.wait(timeoutSeconds: 10), err: errText.wait(timeoutSeconds: 10))
}

/// Finds an executable on PATH.
public func executableOnPath(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}

public struct ProgramTimedOut: Error, CustomStringConvertible {
    public let program: String
    public let seconds: Double
    public init(program: String, seconds: Double) {
        self.program = program
        self.seconds = seconds
    }
    public var description: String { "\(program) did not finish within \(seconds) s: a hang" }
}

public struct ProcessOutput: Sendable {
    public let status: Int32
    public let output: String
    public init(status: Int32, output: String) {
        self.status = status
        self.output = output
    }
}

/// Runs a program to completion with `input` on its stdin; stdout and stderr together.
/// `environment` is laid over this process's own.
public func runProgram(
    _ executable: URL, _ arguments: [String], input: [UInt8] = [], environment: [String: String] = [:], timeoutSeconds: Double = 60
) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let stdin = Pipe()
    let output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    process.standardError = output
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    try process.run()
    // Read on another thread while writing: a large input and output must not deadlock on full pipes.
    let collected = OutputCollector()
    let reader = Thread {
        collected.set(output.fileHandleForReading.readDataToEndOfFile())
    }
    reader.start()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        process.terminate()
        throw ProgramTimedOut(program: executable.lastPathComponent, seconds: timeoutSeconds)
    }
    let text = collected.wait(timeoutSeconds: timeoutSeconds)
    return ProcessOutput(status: process.terminationStatus, output: text)
}

public final class OutputCollector: @unchecked Sendable {
    private let condition = WaitCondition()
    private var data: Data?

    public init() {}

    public func set(_ value: Data) {
        condition.lock()
        data = value
        condition.broadcast()
        condition.unlock()
    }

    public func wait(timeoutSeconds: Double) -> String {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        while data == nil && condition.wait(until: deadline) {}
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}

/// Reads a pipe line by line on its own thread, so that waiting for a line can time out.
public final class LineReader: @unchecked Sendable {
    public struct NoLine: Error {
        public init() {}
    }
    private let condition = WaitCondition()
    private var lines: [String] = []
    private var ended = false

    public init(_ handle: FileHandle) {
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                condition.lock()
                if chunk.isEmpty {
                    ended = true
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending = Data(pending[pending.index(after: newline)...])
                }
                condition.broadcast()
                condition.unlock()
            }
        }.start()
    }

    public func nextLine(containing text: String, timeoutSeconds: Double) -> String? {
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let index = lines.firstIndex(where: { $0.contains(text) }) {
                let line = lines[index]
                lines.removeSubrange(...index)
                return line
            }
            if ended || !condition.wait(until: deadline) { return nil }
        }
    }
}
