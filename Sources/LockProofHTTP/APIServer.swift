import CMicroHTTPD
import Foundation
import LockProofSync
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A request with its body, as `APIServer` hands it to its handler.
public struct HTTPBodyRequest: Sendable, Equatable {
    public let method: String
    public let path: String
    /// The request headers the server was asked to look up (`APIServer.headerNames`), by lower-cased name.
    public let headers: [String: String]
    public let body: [UInt8]

    public init(method: String, path: String, headers: [String: String], body: [UInt8]) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

/// Runs on a worker thread of the server's pool: it may block (database, Redis), up to `workers` at once.
public typealias HTTPBodyHandler = @Sendable (HTTPBodyRequest) -> HTTPResponse

/// An HTTP server on libmicrohttpd for an API with request bodies, shaped like Tomcat in front of
/// HikariCP: libmicrohttpd's few I/O threads (epoll) read requests and write responses and never
/// block; a request that has arrived in full is handed to a bounded queue in front of a fixed pool
/// of `workers` threads, and its connection is suspended until a worker has answered. A full
/// queue is answered at once with `overloaded` (a 503 with Retry-After), as Tomcat refuses
/// connections past its accept count. The bounds of `HTTPServer` hold here too (headers by the
/// per-connection memory, slow senders by the arrival timeout, epoll and a raised open-file limit
/// for floods); bodies are capped at `maximumBodyBytes` (413, decided from Content-Length before
/// the body is read when there is one), paths at `maximumPathBytes` (414).
public final class APIServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var limits = HTTPServer.Limits()
        /// Worker threads that run handlers (Tomcat's maxThreads).
        public var workers = 16
        /// Requests waiting for a worker before new ones are refused with `overloaded`.
        public var queueCapacity = 256
        public var maximumBodyBytes = 16 * 1024
        public var maximumPathBytes = 1_024
        /// Request headers passed on to the handler (looked up by name, case-insensitively).
        public var headerNames = ["content-type", "idempotency-key"]
        /// Called with every answer the server gives itself (413, 414, `overloaded`): the handler
        /// never sees those requests, so this is where they are counted.
        public var ownAnswerObserver: (@Sendable (HTTPResponse) -> Void)?
        public init() {}
    }

    public let address: HTTPBindAddress
    public let options: Options
    private let state: APIServerState
    /// The running daemon, the state reference it holds, and its port.
    private struct Running {
        var daemon: OpaquePointer?
        var reference: Unmanaged<APIServerState>?
        var port: Int?
    }
    // Start and stop may be called from any thread.
    private let running = Mutex(Running())

    /// `tooLarge`, `uriTooLong` and `overloaded` are the server's own answers (the API renders
    /// them as problem documents); `handler` answers everything else on a worker thread.
    public init(
        address: HTTPBindAddress, options: Options, handler: @escaping HTTPBodyHandler,
        tooLarge: HTTPResponse, uriTooLong: HTTPResponse, overloaded: HTTPResponse
    ) {
        self.address = address
        self.options = options
        state = APIServerState(
            options: options, handler: handler, tooLarge: tooLarge, uriTooLong: uriTooLong, overloaded: overloaded)
    }

    deinit { stop() }

    public var boundPort: Int? {
        running.withLock { $0.port }
    }

    /// Requests answered `overloaded` because the queue was full (for tests and diagnostics).
    public var refusedOverloaded: Int { state.pool.refused }

    public func start() throws {
        try running.withLock { running in
            guard running.daemon == nil else { throw HTTPServerError("the API server on \(address) is already running") }
            let retained = Unmanaged.passRetained(state)
            let started: OpaquePointer
            do {
                started = try startMicroHTTPDaemon(
                    address: address, limits: options.limits, extraFlags: MHD_ALLOW_SUSPEND_RESUME.rawValue,
                    handler: apiHandleRequest, notifyConnection: apiNotifyConnection, notifyCompleted: apiRequestCompleted,
                    context: retained.toOpaque())
            } catch {
                retained.release()
                throw error
            }
            state.pool.start()
            running.daemon = started
            running.reference = retained
            running.port = Int(lockproof_mhd_bound_port(started))
            state.tracker.startReaping()
        }
    }

    /// Stops accepting work, lets the workers answer what they hold and what is queued (at most
    /// `graceSeconds`: a request's waits are bounded, the pool's by 30 s), then stops libmicrohttpd,
    /// which must not stop while a worker still holds a suspended connection. Must not be called
    /// from a handler.
    public func stop(graceSeconds: Double = 120) {
        running.withLock { running in
            guard let daemon = running.daemon else { return }
            state.tracker.stopReaping()
            // Every queued request is answered (by a worker, or `overloaded` once draining) and its
            // connection resumed before libmicrohttpd stops: it must not stop with one suspended.
            state.pool.drain(graceSeconds: graceSeconds)
            state.tracker.waitForRequestsInFlight(timeoutSeconds: 2)
            MHD_stop_daemon(daemon)
            running.daemon = nil
            running.port = nil
            running.reference?.release()
            running.reference = nil
        }
    }
}

/// What the libmicrohttpd callbacks share: read from its threads and the workers.
final class APIServerState: @unchecked Sendable {
    let options: APIServer.Options
    let handler: HTTPBodyHandler
    let tooLarge: HTTPResponse
    let uriTooLong: HTTPResponse
    let overloaded: HTTPResponse
    let tracker: ConnectionTracker
    let pool: WorkerPool

    init(options: APIServer.Options, handler: @escaping HTTPBodyHandler, tooLarge: HTTPResponse, uriTooLong: HTTPResponse, overloaded: HTTPResponse) {
        self.options = options
        self.handler = handler
        self.tooLarge = tooLarge
        self.uriTooLong = uriTooLong
        self.overloaded = overloaded
        tracker = ConnectionTracker(arrivalSeconds: options.limits.requestArrivalSeconds)
        pool = WorkerPool(workers: options.workers, capacity: options.queueCapacity)
    }
}

/// One request between its headers and its answer. Owned (retained) through libmicrohttpd's
/// per-request pointer, released when the request completes.
final class APIRequestContext: @unchecked Sendable {
    var method = ""
    var path = ""
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    /// Set once the response is known: queued on the next call of the access handler.
    var response: HTTPResponse?
    var dispatched = false
    /// A body larger than allowed arrived without a Content-Length: read and dropped, then 413.
    var overflowed = false
}

/// A fixed set of threads taking jobs from a bounded queue.
final class WorkerPool: @unchecked Sendable {
    let workers: Int
    let capacity: Int
    private let condition = WaitCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var running = 0
    private var accepting = false
    private var stopping = false
    private var busy = 0
    private(set) var refused = 0

    init(workers: Int, capacity: Int) {
        self.workers = max(1, workers)
        self.capacity = max(1, capacity)
    }

    func start() {
        condition.lock()
        defer { condition.unlock() }
        accepting = true
        stopping = false
        for index in 0..<workers {
            running += 1
            let thread = Thread { [self] in work() }
            thread.name = "lockproof-api-worker-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Queues a job; false when the queue is full or the pool is stopping (the caller answers itself).
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard accepting, jobs.count - head < capacity else {
            refused += 1
            return false
        }
        jobs.append(job)
        condition.signal()
        return true
    }

    private func work() {
        condition.lock()
        while true {
            while head == jobs.count && !stopping { condition.wait() }
            if head == jobs.count && stopping { break }
            let job = jobs[head]
            head += 1
            if head > 1_024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            busy += 1
            condition.unlock()
            job()
            condition.lock()
            busy -= 1
            condition.broadcast()
        }
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Refuses new jobs, runs the queued ones, waits for the workers to end (at most `graceSeconds`).
    func drain(graceSeconds: Double) {
        let deadline = Date(timeIntervalSinceNow: graceSeconds)
        condition.lock()
        accepting = false
        stopping = true
        condition.broadcast()
        while running > 0, Date() < deadline { _ = condition.wait(until: deadline) }
        condition.unlock()
    }
}

private func lookupHeader(_ connection: OpaquePointer, _ name: String) -> String? {
    guard let value = MHD_lookup_connection_value(connection, .HEADER_KIND, name) else { return nil }
    return String(cString: value)
}

/// libmicrohttpd's access handler (see `HTTPServer`'s for the call sequence). With suspension:
/// the last call (no body left) queues the job and suspends; the worker stores the response and
/// resumes; libmicrohttpd calls once more, and the stored response is queued.
private func apiHandleRequest(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>?, requestState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let url, let method, let requestState else { return .NO }
    let state = Unmanaged<APIServerState>.fromOpaque(cls).takeUnretainedValue()
    if requestState.pointee == nil {
        state.tracker.requestArrived(connection)
        let context = APIRequestContext()
        requestState.pointee = Unmanaged.passRetained(context).toOpaque()
        context.method = String(cString: method)
        context.path = String(cString: url)
        for name in state.options.headerNames {
            if let value = lookupHeader(connection, name) { context.headers[name] = value }
        }
        if context.path.utf8.count > state.options.maximumPathBytes {
            state.options.ownAnswerObserver?(state.uriTooLong)
            return queueResponse(state.uriTooLong, on: connection)
        }
        if let length = lookupHeader(connection, "content-length").flatMap({ Int($0) }), length > state.options.maximumBodyBytes {
            // Refused before the body is read: libmicrohttpd closes the connection after answering.
            state.options.ownAnswerObserver?(state.tooLarge)
            return queueResponse(state.tooLarge, on: connection)
        }
        return .YES
    }
    let context = Unmanaged<APIRequestContext>.fromOpaque(requestState.pointee!).takeUnretainedValue()
    if let uploadDataSize, uploadDataSize.pointee != 0 {
        let size = uploadDataSize.pointee
        if !context.overflowed, let uploadData {
            if context.body.count + size > state.options.maximumBodyBytes {
                context.overflowed = true
                context.body = []
            } else {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
                    context.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size))
                }
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }
    if let response = context.response { return queueResponse(response, on: connection) }
    if context.overflowed {
        state.options.ownAnswerObserver?(state.tooLarge)
        return queueResponse(state.tooLarge, on: connection)
    }
    guard !context.dispatched else { return .YES }  // resumed spuriously: the worker has not answered yet
    context.dispatched = true
    let request = HTTPBodyRequest(method: context.method, path: context.path, headers: context.headers, body: context.body)
    // Suspended before the job can resume it. Pointers cross threads as bit patterns.
    MHD_suspend_connection(connection)
    let connectionBits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
    let contextReference = Unmanaged.passRetained(context)
    let contextBits = UInt(bitPattern: contextReference.toOpaque())
    let handler = state.handler
    let accepted = state.pool.submit {
        let context = Unmanaged<APIRequestContext>.fromOpaque(UnsafeRawPointer(bitPattern: contextBits)!).takeRetainedValue()
        context.response = handler(request)
        MHD_resume_connection(OpaquePointer(bitPattern: connectionBits))
    }
    if !accepted {
        contextReference.release()
        state.options.ownAnswerObserver?(state.overloaded)
        context.response = state.overloaded
        MHD_resume_connection(connection)
    }
    return .YES
}

private func apiNotifyConnection(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    code: MHD_ConnectionNotificationCode
) {
    guard let cls, let connection else { return }
    Unmanaged<APIServerState>.fromOpaque(cls).takeUnretainedValue().tracker.note(connection, code)
}

private func apiRequestCompleted(
    cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, requestState: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    code: MHD_RequestTerminationCode
) {
    if let requestState, let pointer = requestState.pointee {
        Unmanaged<APIRequestContext>.fromOpaque(pointer).release()
        requestState.pointee = nil
    }
    guard let cls, let connection else { return }
    Unmanaged<APIServerState>.fromOpaque(cls).takeUnretainedValue().tracker.awaitNextRequest(connection)
}
