import Foundation
import LockProofRedis

/// A redis-server of a test's own, on a free loopback port, with the arguments the test needs
/// (e.g. ACL users and passwords), so that the shared test server's configuration is never touched.
public final class ThrowawayRedis {
    public let port: Int
    private let process = Process()
    private let directory: URL

    public init(arguments: [String]) throws {
        guard let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else { throw ThrowawayRedisError.notInstalled }
        // A free port: the listener closes at once (a race other tests are unlikely to win).
        port = try SilentListener().port
        // A folder of its own: a replica's full sync writes an RDB file even with saving off.
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockproof-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments =
            ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when it answers (NOAUTH counts as an answer); bounded.
        let deadline = Date(timeIntervalSinceNow: 20)
        while Date() < deadline {
            guard let error = Self.connectionError(port: port) else { return }
            if error.contains("NOAUTH") || error.contains("WRONGPASS") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ThrowawayRedisError.didNotStart
    }

    private static func connectionError(port: Int) -> String? {
        do {
            _ = try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), connectTimeout: 1)
            return nil
        } catch { return String(describing: error) }
    }

    /// Stops it (SIGTERM) and waits for the process to end; again is a no-op.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Kills it at once (SIGKILL: a crash, nothing handed over) and waits for the process to end.
    public func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

public enum ThrowawayRedisError: Error { case notInstalled, didNotStart }
