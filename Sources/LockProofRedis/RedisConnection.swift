import CHiredis
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case null
    case array([RedisReply])
    case error(String)

    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .string: return text.flatMap { Int64($0) }
        default: return nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }
}

public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The server could not be reached.
        case connectionFailed
        /// A read or write on the socket failed (including a timeout); the context was dropped.
        case io
        /// A read or write took longer than the command timeout.
        case timeout
        /// The server answered with an error reply.
        case server
        /// A malformed URL or reply.
        case protocolError
    }
    public let kind: Kind
    public let message: String
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { "Redis \(kind.rawValue): \(message)" }
}

/// A Lua script run by EVALSHA, falling back to EVAL when the server has not cached it.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public init(_ source: String) { self.source = source }
}

/// One Redis connection over hiredis. Not thread-safe: each virtual client owns its own.
/// Blocking: call it from a dedicated thread.
public final class RedisConnection {
    public let endpoint: RedisEndpoint
    public let connectTimeout: Double
    public let commandTimeout: Double
    /// Sent as `CLIENT SETNAME` on every (re)connect, so that `CLIENT LIST` tells this connection's
    /// owner (the `redis-client-kill` fault picks the virtual clients' connections by it).
    public let clientName: String?
    /// Read freely by the owning thread; freed or replaced only under `interruption`'s lock, which
    /// `interrupt` (another thread) holds while it reads the socket, so that it never reads a
    /// freed context nor shuts down a descriptor number already reused by another connection.
    private var context: UnsafeMutablePointer<redisContext>?
    /// Set by `interrupt`: no command reconnects afterwards (a reconnect would block again).
    private let interruption = Mutex(false)
    private var scriptHashes: [String: String] = [:]

    /// `connectTimeout` (default: the endpoint's) bounds opening the connection and its
    /// handshake, so that a server that accepts and never answers fails instead of hanging;
    /// `commandTimeout` bounds each later command (0: none).
    public init(endpoint: RedisEndpoint, connectTimeout: Double? = nil, commandTimeout: Double = 5, clientName: String? = nil) throws {
        self.endpoint = endpoint
        self.clientName = clientName
        self.connectTimeout = connectTimeout ?? endpoint.connectTimeoutSeconds
        self.commandTimeout = commandTimeout
        try connect()
    }

    public convenience init(url: String, connectTimeout: Double? = nil, commandTimeout: Double = 5) throws {
        try self.init(endpoint: RedisEndpoint(url: url), connectTimeout: connectTimeout, commandTimeout: commandTimeout)
    }

    deinit { if let context { redisFree(context) } }

    public var isConnected: Bool { context != nil }

    private func connect() throws {
        try replaceContext(with: nil)
        scriptHashes = [:]
        guard let ctx = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeval(seconds: connectTimeout))
        else { throw RedisError(kind: .connectionFailed, message: "cannot allocate a hiredis context") }
        if ctx.pointee.err != 0 {
            let message = endpoint.scrub(Self.errorText(ctx))
            redisFree(ctx)
            throw RedisError(kind: .connectionFailed, message: "cannot connect to \(endpoint): \(message)")
        }
        // The handshake runs under the connect timeout: a server that accepted and stays silent
        // fails here rather than hanging the first command (some connections have no command timeout).
        redisSetTimeout(ctx, timeval(seconds: connectTimeout))
        do {
            try replaceContext(with: ctx)
        } catch {
            redisFree(ctx)
            throw error
        }
        do {
            if let password = endpoint.password {
                try expectOK(try command(endpoint.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]))
            }
            if endpoint.database != 0 { try expectOK(try command(["SELECT", String(endpoint.database)])) }
            if let clientName { try expectOK(try command(["CLIENT", "SETNAME", clientName])) } else { try expectOK(try command(["PING"])) }
        } catch let error as RedisError {
            try? replaceContext(with: nil)
            let reason =
                error.kind == .timeout
                ? "no answer within \(connectTimeout) s (connect timeout)" : endpoint.scrub(error.message)
            throw RedisError(kind: error.kind == .timeout ? .timeout : .connectionFailed, message: "cannot connect to \(endpoint): \(reason)")
        }
        redisSetTimeout(ctx, timeval(seconds: max(0, commandTimeout)))
    }

    private func expectOK(_ reply: RedisReply) throws {
        if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
    }

    /// Sends one command (binary safe, as an argv) and returns its reply.
    /// An error reply is returned as `.error`, not thrown; socket failures throw.
    public func command(_ arguments: [String]) throws -> RedisReply {
        try command(bytes: arguments.map { Array($0.utf8) })
    }

    public func command(bytes arguments: [[UInt8]]) throws -> RedisReply {
        if context == nil { try connect() }
        guard let ctx = context else { throw RedisError(kind: .io, message: "not connected") }
        let raw = Self.withArgv(arguments) { argv, lengths in
            redisCommandArgv(ctx, Int32(arguments.count), argv, lengths)
        }
        guard let raw else { throw dropContext(ctx) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return Self.convert(reply)
    }

    /// Like `command`, but an error reply throws.
    @discardableResult
    public func checked(_ arguments: [String]) throws -> RedisReply {
        let reply = try command(arguments)
        if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
        return reply
    }

    /// Runs a script by EVALSHA; if the server lost it (NOSCRIPT), by EVAL.
    public func eval(_ script: RedisScript, keys: [String], arguments: [String]) throws -> RedisReply {
        let tail = [String(keys.count)] + keys + arguments
        // One lookup per call: hashing the whole script source costs ~2,000 instructions each time
        // (callgrind, docs/BENCH.md), and the cases' scripts are few and static.
        var sha = scriptHashes[script.source]
        if sha == nil, case .string(let bytes) = try command(["SCRIPT", "LOAD", script.source]) {
            sha = String(decoding: bytes, as: UTF8.self)
            scriptHashes[script.source] = sha
        }
        if let sha {
            let reply = try command(["EVALSHA", sha] + tail)
            guard case .error(let message) = reply, message.hasPrefix("NOSCRIPT") else {
                return try throwingServerError(reply)
            }
            scriptHashes[script.source] = nil
        }
        return try throwingServerError(try command(["EVAL", script.source] + tail))
    }

    private func throwingServerError(_ reply: RedisReply) throws -> RedisReply {
        if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
        return reply
    }

    /// Blocks until the next pushed message on a subscribed connection. Never reconnects: a new
    /// connection has no subscription, and reading it would wait for nothing forever; after a
    /// failure the caller subscribes again with `send`, which does reconnect.
    public func readReply() throws -> RedisReply {
        guard let ctx = context else { throw RedisError(kind: .io, message: "not connected: subscribe again") }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { throw dropContext(ctx) }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends a command without waiting for its reply (used to SUBSCRIBE).
    public func send(_ arguments: [String]) throws {
        if context == nil { try connect() }
        guard let ctx = context else { throw RedisError(kind: .io, message: "not connected") }
        let bytes = arguments.map { Array($0.utf8) }
        let status = Self.withArgv(bytes) { argv, lengths in
            redisAppendCommandArgv(ctx, Int32(bytes.count), argv, lengths)
        }
        guard status == REDIS_OK else { throw dropContext(ctx) }
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(ctx, &done) == REDIS_OK else { throw dropContext(ctx) }
        }
    }

    /// Shuts the socket down so that a thread blocked reading on it wakes up with an error.
    /// The only call that may come from another thread.
    /// The connection stays interrupted: later commands fail instead of reconnecting.
    public func interrupt() {
        interruption.withLock { interrupted in
            interrupted = true
            if let context { shutdown(context.pointee.fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Frees the current context (closing its socket) and installs `fresh`, under the lock
    /// `interrupt` takes; throws, installing nothing, once the connection was interrupted.
    private func replaceContext(with fresh: UnsafeMutablePointer<redisContext>?) throws {
        try interruption.withLock { interrupted in
            if let context { redisFree(context) }
            context = nil
            if fresh != nil && interrupted {
                throw RedisError(kind: .io, message: "connection interrupted")
            }
            context = fresh
        }
    }

    /// After a socket error hiredis' context is unusable: free it; the next command reconnects.
    private func dropContext(_ ctx: UnsafeMutablePointer<redisContext>) -> RedisError {
        let message = endpoint.scrub(Self.errorText(ctx))
        let kind: RedisError.Kind =
            message.contains("temporarily unavailable") || message.contains("timed out") ? .timeout : .io
        try? replaceContext(with: nil)
        scriptHashes = [:]
        return RedisError(kind: kind, message: message.isEmpty ? "connection lost" : message)
    }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { buffer in
            let bytes = buffer.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(bytes(value.str, value.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(value.elements)).map { convert(value.element[$0]!) })
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    private static func withArgv<R>(
        _ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        let buffers: [UnsafeMutablePointer<CChar>] = arguments.map { argument in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { raw in
                if let base = raw.baseAddress {
                    UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: argument.count)
                }
            }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        let lengths = arguments.map { $0.count }
        return argv.withUnsafeMutableBufferPointer { argvBuffer in
            lengths.withUnsafeBufferPointer { lengthBuffer in
                body(argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
            }
        }
    }
}

extension timeval {
    init(seconds: Double) {
        let whole = Int(seconds)
        self.init(tv_sec: whole, tv_usec: Int((seconds - Double(whole)) * 1_000_000))
    }
}
