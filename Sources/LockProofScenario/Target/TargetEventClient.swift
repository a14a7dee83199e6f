import CEpoll
import Foundation
import LockProofCommerce
import LockProofLocking

/// The event-driven `TargetClient` (issue 18): the same requests (the target's templates), the same
/// rules on the responses, the same spread over instances and the same request observer, on
/// non-blocking keep-alive sockets that an `EventLoop` drives, so that one loop thread serves
/// thousands of virtual users. Connect and request are each bounded by the target's timeouts (a
/// loop timer); a connection refused before anything was sent is `fail` (`connection_failed`), a
/// timeout or a connection lost after sending is `unknown`.
public final class TargetEventClient: EventDrivenClient {
    /// The blocking client of the same user, never opened: its target, instances, instance picks,
    /// requests, rules and observer are this client's.
    private let plan: TargetClient
    private var connections: [EventConnection] = []
    private var loop: EventLoop?

    /// The event-driven twin of `plan` (e.g. `TargetClient(target:baseURL:)`).
    public init(_ plan: TargetClient) { self.plan = plan }

    /// The client of virtual user `index`, spread over `baseURLs` as `TargetClient.forVirtualUser` spreads it.
    public static func forVirtualUser(
        _ index: Int, of target: Target, baseURLs: [String], randomSeed: UInt64, observe: TargetClient.RequestObserver? = nil
    ) -> TargetEventClient {
        TargetEventClient(TargetClient.forVirtualUser(index, of: target, baseURLs: baseURLs, randomSeed: randomSeed, observe: observe))
    }

    public func open(on loop: EventLoop) throws {
        self.loop = loop
        let target = plan.target
        connections = try plan.baseURLs.map {
            EventConnection(
                try TargetConnection(baseURL: $0, connectTimeout: target.connectTimeoutSeconds, requestTimeout: target.requestTimeoutSeconds),
                loop: loop)
        }
    }

    public func start(_ invocation: Invocation, completed: @escaping (Completion) -> Void) {
        guard let loop, !connections.isEmpty else { preconditionFailure("start before open") }
        guard let (operation, request, instance) = plan.plan(invocation) else {
            // TargetFit refuses such a scenario before it runs; this is the last guard (no request, not counted).
            loop.schedule { completed(TargetClient.notATargetOperation) }
            return
        }
        let started = monotonicSeconds()
        let plan = plan
        connections[instance].send(request) { outcome in completed(plan.complete(outcome, of: operation, invocation, started: started)) }
    }

    public func close() { connections.forEach { $0.close() } }
}

/// A `TargetConnection` driven by an event loop: connect, write and read never block, the connect
/// bounded by the connect timeout and the exchange by the request timeout (loop timers). While
/// idle the socket stays watched for reading: the server closing a kept-alive connection closes
/// it here before the next request would find it dead.
final class EventConnection {
    private let connection: TargetConnection
    private let loop: EventLoop
    /// Resolved once, at open.
    private let addresses: [TargetConnection.Address]
    private enum Phase { case idle, connecting(next: Int), writing, reading }
    private var phase = Phase.idle
    private var bytes: [UInt8] = []
    private var sent = 0
    private var reader = ResponseReader()
    private var done: ((TargetConnection.Outcome) -> Void)?
    private var timer: Int?
    /// Inside `send`: a completion known at once is delivered on the loop's next turn.
    private var starting = false
    private var watchingOut = false

    init(_ connection: TargetConnection, loop: EventLoop) {
        self.connection = connection
        self.loop = loop
        addresses = connection.addresses()
        connection.willClose = { [weak loop] descriptor in loop?.forget(descriptor) }
    }

    func close() {
        if let timer { loop.cancel(timer: timer) }
        timer = nil
        connection.close()
        phase = .idle
    }

    func send(_ request: TargetRequest, done: @escaping (TargetConnection.Outcome) -> Void) {
        self.done = done
        bytes = connection.requestBytes(request)
        sent = 0
        reader = ResponseReader()
        starting = true
        defer { starting = false }
        if connection.socketDescriptor >= 0 { exchange() } else { connect(from: 0) }
    }

    private func finish(_ outcome: TargetConnection.Outcome) {
        if let timer { loop.cancel(timer: timer) }
        timer = nil
        phase = .idle
        bytes = []
        reader = ResponseReader()
        guard let done else { return }
        self.done = nil
        if starting { loop.schedule { done(outcome) } } else { done(outcome) }
    }

    /// Tries the host's addresses from `index` on, as the blocking connection does.
    private func connect(from index: Int) {
        var index = index
        while index < addresses.count {
            let address = addresses[index]
            index += 1
            let descriptor = TargetConnection.socket(address.family, address.type, address.proto)
            guard descriptor >= 0 else { continue }
            var storage = address.storage
            let result = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, address.length) }
            }
            if result == 0 {
                connection.socketDescriptor = descriptor
                connected()
                return
            }
            if errno == EINPROGRESS {
                connection.socketDescriptor = descriptor
                phase = .connecting(next: index)
                loop.watch(descriptor, EPOLLOUT.rawValue) { [unowned self] events in handle(events) }
                let next = index
                timer = loop.timer(at: monotonicSeconds() + connection.connectTimeout) { [unowned self] in
                    timer = nil
                    connection.close()
                    connect(from: next)
                }
                return
            }
            Glibc.close(descriptor)
        }
        finish(.notSent("connection_failed"))
    }

    private func connected() {
        watchingOut = false
        loop.watch(connection.socketDescriptor, EPOLLIN.rawValue | EPOLLRDHUP.rawValue) { [unowned self] events in handle(events) }
        exchange()
    }

    private func exchange() {
        phase = .writing
        timer = loop.timer(at: monotonicSeconds() + connection.requestTimeout) { [unowned self] in
            timer = nil
            finish(connection.fail("timeout"))
        }
        write()
    }

    private func write() {
        switch connection.write(bytes, sent: &sent) {
        case .done:
            phase = .reading
            if watchingOut {
                watchingOut = false
                loop.watch(connection.socketDescriptor, EPOLLIN.rawValue | EPOLLRDHUP.rawValue) { [unowned self] events in handle(events) }
            }
        case .wouldBlock:
            if !watchingOut {
                watchingOut = true
                loop.watch(connection.socketDescriptor, EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLOUT.rawValue) { [unowned self] events in
                    handle(events)
                }
            }
        case .lost:
            finish(connection.fail("connection_lost"))
        }
    }

    private func handle(_ events: UInt32) {
        switch phase {
        case .idle:
            // A kept-alive connection the server closed (or anything else unasked for): let it go.
            connection.close()
        case .connecting(let next):
            if let timer { loop.cancel(timer: timer) }
            timer = nil
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(connection.socketDescriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 && events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) == 0 {
                connected()
            } else {
                connection.close()
                connect(from: next)
            }
        case .writing, .reading:
            if case .writing = phase, events & (EPOLLOUT.rawValue | EPOLLERR.rawValue) != 0 { write() }
            guard done != nil, events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 else { return }
            if let outcome = connection.receive(into: &reader, buffer: loop.scratch) ?? connection.settled(&reader) { finish(outcome) }
        }
    }
}
