import Foundation

/// A second, private redis-server the test starts, stops and restarts itself (Redis down, Redis
/// back), on `LOCKPROOF_REDIS_REPLICA_PORT` or else a free loopback port chosen once (so that test
/// runs of several checkouts on one machine never meet), never on the shared test server.
public final class SpareRedis {
    public let port: Int
    private var process: Process?

    public init() {
        port = Int(ProcessInfo.processInfo.environment["LOCKPROOF_REDIS_REPLICA_PORT"] ?? "")
            ?? (try? SilentListener().port) ?? 26380
    }

    deinit { stop() }

    /// The running server's process id.
    public var pid: Int32? { process.map(\.processIdentifier) }

    /// Starts it and waits (at most 30 s: a loaded machine starts processes slowly) until it accepts
    /// connections. A server that exits at once could not bind its port: the port is in the
    /// kernel's ephemeral range (32768–60999 on Linux), and a client connection that used it as its
    /// own port holds it for a minute in TIME_WAIT (the flood tests open thousands). It is started
    /// again until the port is free, for at most 90 s more.
    public func start() throws {
        stop()
        let portDeadline = Date(timeIntervalSinceNow: 90)
        var launched = try launch()
        var acceptDeadline = Date(timeIntervalSinceNow: 30)
        while Date() < max(portDeadline, acceptDeadline) {
            if canConnect() { return }
            if !launched.isRunning {
                guard Date() < portDeadline else { break }
                Thread.sleep(forTimeInterval: 0.5)
                launched = try launch()
                acceptDeadline = Date(timeIntervalSinceNow: 30)
                continue
            }
            if Date() >= acceptDeadline { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw SpareRedisError(
            message: "redis-server on port \(port) did not accept connections within 30 s of starting, or could not bind the port for 90 s")
    }

    private func launch() throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", FileManager.default.temporaryDirectory.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        return process
    }

    /// Stops it (SIGTERM) and waits for the process to end.
    public func stop() {
        guard let process else { return }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        self.process = nil
    }

    private func canConnect() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

public struct SpareRedisError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
