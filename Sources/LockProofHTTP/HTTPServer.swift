import CMicroHTTPD
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A request as the route handlers see it: the method and the path without the query string.
public struct HTTPRequest: Sendable, Equatable {
    public let method: String
    public let path: String

    public init(method: String, path: String) {
        self.method = method
        self.path = path
    }
}

/// What a handler answers. The body is bytes so that a metrics exposition is not copied through a
/// String on its way out.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// Headers besides Content-Type (e.g. `Allow` on a 405).
    public var extraHeaders: [HTTPHeader]

    public init(status: Int, contentType: String, body: [UInt8], extraHeaders: [HTTPHeader] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.extraHeaders = extraHeaders
    }

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", text: String, extraHeaders: [HTTPHeader] = []) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8), extraHeaders: extraHeaders)
    }

    static let notFound = HTTPResponse(status: 404, text: "not found\n")
    static let methodNotAllowed = HTTPResponse(
        status: 405, text: "method not allowed: use GET or HEAD\n", extraHeaders: [HTTPHeader(name: "Allow", value: "GET, HEAD")])
}

public struct HTTPHeader: Sendable, Equatable {
    public let name: String
    public let value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Runs on libmicrohttpd's threads, possibly several at once: it must be thread-safe.
public typealias HTTPHandler = @Sendable (HTTPRequest) -> HTTPResponse

public struct HTTPServerError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where to listen: an IP literal (IPv6 in brackets) or `localhost`, and a port (0 = any free one).
public struct HTTPBindAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) throws {
        guard (0...65535).contains(port) else { throw HTTPServerError("port \(port) is not within 0–65535") }
        guard Self.socketAddress(host: host, port: 0) != nil else {
            throw HTTPServerError("'\(host)' is not an IPv4 address, an IPv6 address or localhost")
        }
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, e.g. `127.0.0.1:9464`, `[::1]:9464`, `localhost:0`.
    public init(parsing text: String) throws {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw HTTPServerError("'\(text)' has no closing ']' after the IPv6 address")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw HTTPServerError("'\(text)' has no :port after the IPv6 address") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw HTTPServerError("'\(text)' is not host:port (e.g. 127.0.0.1:9464)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw HTTPServerError("'\(text)': write an IPv6 address in brackets, e.g. [::1]:9464")
            }
        }
        guard !host.isEmpty else { throw HTTPServerError("'\(text)' has no host (e.g. 127.0.0.1:9464)") }
        guard let port = Int(portText), portText.allSatisfy(\.isASCII) else {
            throw HTTPServerError("'\(portText)' in '\(text)' is not a port number")
        }
        try self.init(host: String(host), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var isIPv6: Bool { host.contains(":") }

    /// The bytes of a `sockaddr_in` or `sockaddr_in6`; no name resolution beyond `localhost`, so
    /// that where the server listens never depends on DNS.
    static func socketAddress(host: String, port: Int) -> [UInt8]? {
        let literal = host == "localhost" ? "127.0.0.1" : host
        if literal.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, literal, &address.sin6_addr) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, literal, &address.sin_addr) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}

/// A small HTTP server on libmicrohttpd for a fixed table of GET routes.
///
/// HEAD is answered as GET without the body (RFC 9110 §9.3.2): the handler runs and its response
/// is queued as is; libmicrohttpd sends the headers, Content-Length included, and never the body.
/// Unknown paths get 404, other methods on a known path 405 with `Allow: GET, HEAD`. Request headers are
/// bounded by the per-connection memory limit (a larger request is refused by libmicrohttpd with
/// an error status), idle connections by a timeout, and the time a request may take to arrive in
/// full by `requestArrivalSeconds` (libmicrohttpd's own timeout restarts at every byte, so a
/// slowloris client trickling one header byte at a time would keep its connection forever).
///
/// A flood of connections (idle, or slow senders) is absorbed rather than refused: epoll, a
/// connection limit far above what a scraper needs, and the process's open-file limit raised (see
/// `raiseOpenFileLimit`), so that a scrape from the same address as the flood is still answered.
/// A per-address limit would shut that scraper out together with the flood.
public final class HTTPServer: @unchecked Sendable {
    public struct Limits: Sendable, Equatable {
        /// Per-connection memory, which bounds the request line and headers.
        public var connectionMemoryBytes: Int = 32 * 1024
        /// Idle connections are closed after this many seconds.
        public var connectionTimeoutSeconds: Int = 10
        /// Seconds from a connection's start (or its previous response) until its request must
        /// have arrived in full (request line and headers); a slower sender is disconnected.
        public var requestArrivalSeconds: Double = 10
        /// Open connections; each costs a socket and at most `connectionMemoryBytes`. Bounded in
        /// practice by the open-file limit, which `raiseOpenFileLimit` lifts to the hard limit.
        public var maxConnections: Int = 16_384
        /// Threads that serve requests, each with its own epoll set; each may run a handler.
        public var threads: Int = 2
        public init() {}
    }

    public let address: HTTPBindAddress
    public let limits: Limits
    private let router: RequestRouter
    /// The running daemon, the router reference it holds, and its port.
    private struct Running {
        var daemon: OpaquePointer?
        var routerReference: Unmanaged<RequestRouter>?
        var port: Int?
    }

    // Start and stop may be called from any thread.
    private let running = Mutex(Running())

    public init(address: HTTPBindAddress, limits: Limits = Limits(), routes: [String: HTTPHandler]) {
        self.address = address
        self.limits = limits
        self.router = RequestRouter(routes: routes, tracker: ConnectionTracker(arrivalSeconds: limits.requestArrivalSeconds))
    }

    deinit { stop() }

    /// The port the server listens on (the ephemeral one when started on port 0); nil when stopped.
    public var boundPort: Int? {
        running.withLock { $0.port }
    }

    public var isRunning: Bool { boundPort != nil }

    /// Binds and starts serving on libmicrohttpd's own threads.
    public func start() throws {
        try running.withLock { state in
            guard state.daemon == nil else { throw HTTPServerError("the server on \(address) is already running") }
            // The daemon holds the router for as long as it runs; the handler borrows it through `cls`.
            let reference = Unmanaged.passRetained(router)
            let started: OpaquePointer
            do {
                started = try startMicroHTTPDaemon(
                    address: address, limits: limits, handler: handleRequest, notifyConnection: notifyConnection,
                    notifyCompleted: notifyCompleted, context: reference.toOpaque())
            } catch {
                reference.release()
                throw error
            }
            state.daemon = started
            state.routerReference = reference
            state.port = Int(lockproof_mhd_bound_port(started))
            router.tracker.startReaping()
        }
    }

    /// Stops listening, waits for requests in progress to finish, and closes every connection.
    /// Must not be called from inside a handler.
    public func stop() {
        running.withLock { state in
            guard let daemon = state.daemon else { return }
            router.tracker.stopReaping()
            router.tracker.waitForRequestsInFlight(timeoutSeconds: 2)
            MHD_stop_daemon(daemon)
            state.daemon = nil
            state.port = nil
            state.routerReference?.release()
            state.routerReference = nil
        }
    }
}

/// The immutable route table: read from many libmicrohttpd threads without locking.
final class RequestRouter: Sendable {
    let routes: [String: HTTPHandler]
    let tracker: ConnectionTracker
    init(routes: [String: HTTPHandler], tracker: ConnectionTracker) {
        self.routes = routes
        self.tracker = tracker
    }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let handler = routes[request.path] else { return .notFound }
        guard request.method == "GET" || request.method == "HEAD" else { return .methodNotAllowed }
        return handler(request)
    }
}

/// libmicrohttpd's access handler. A free function, so that it converts to a C function pointer;
/// the router arrives through `cls`.
///
/// libmicrohttpd calls it several times per request: first right after the headers (the request
/// state is still NULL: mark it and wait), then once per chunk of body (discarded: no route takes
/// a body), then once more with no body left, when the response is queued.
private func handleRequest(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>?, requestState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let url, let method, let requestState else { return .NO }
    if requestState.pointee == nil {
        // The headers are complete: this request arrived in time.
        Unmanaged<RequestRouter>.fromOpaque(cls).takeUnretainedValue().tracker.requestArrived(connection)
        requestState.pointee = UnsafeMutableRawPointer(bitPattern: 1)
        return .YES
    }
    if let uploadDataSize, uploadDataSize.pointee != 0 {
        uploadDataSize.pointee = 0
        return .YES
    }
    let router = Unmanaged<RequestRouter>.fromOpaque(cls).takeUnretainedValue()
    let response = router.respond(to: HTTPRequest(method: String(cString: method), path: String(cString: url)))
    return queueResponse(response, on: connection)
}

/// Connection start and end, from libmicrohttpd's threads: the arrival clock starts.
private func notifyConnection(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    code: MHD_ConnectionNotificationCode
) {
    guard let cls, let connection else { return }
    Unmanaged<RequestRouter>.fromOpaque(cls).takeUnretainedValue().tracker.note(connection, code)
}

/// A request finished (answered or not): on a kept-alive connection the next one's clock starts.
private func notifyCompleted(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, requestState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    code: MHD_RequestTerminationCode
) {
    guard let cls, let connection else { return }
    Unmanaged<RequestRouter>.fromOpaque(cls).takeUnretainedValue().tracker.awaitNextRequest(connection)
}

/// Raises this process's soft limit on open files to its hard limit, as Go's runtime does at
/// start-up: the default soft limit (often 1,024) caps how many connections a server can hold,
/// well below what the machine allows. Returns the soft limit before and after.
@discardableResult
public func raiseOpenFileLimit() -> (before: UInt64, after: UInt64) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
    let before = UInt64(limit.rlim_cur)
    guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
    limit.rlim_cur = limit.rlim_max
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
    return (before, UInt64(limit.rlim_max))
}
