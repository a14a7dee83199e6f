import Foundation
import LockProofCommerce
import LockProofLocking

/// A `Client` over HTTP (issue 18): each invocation becomes the request the target file describes
/// for its operation, sent on this virtual user's own keep-alive connection with the target's
/// connect and request timeouts (no request without one), and the response becomes the
/// completion by the target's rules. What the client cannot tell — a timeout, a connection lost
/// after the request was sent, a 5xx the rules leave unknown — is `unknown`; a connection refused
/// before anything was sent is `fail` (`connection_failed`).
public final class TargetClient: Client {
    /// What a run through a target learns of each request it sent: the operation (an
    /// `OperationName` raw value), its history outcome (`ok`, `fail`, `unknown`) and the seconds
    /// from the start of the request to its interpreted answer. `--metrics-address` counts them in
    /// `lockproof_target_requests_total` and `lockproof_target_request_duration_seconds`.
    public typealias RequestObserver = @Sendable (_ operation: String, _ status: String, _ seconds: Double) -> Void

    let target: Target
    let baseURLs: [String]
    /// One keep-alive connection per instance this client talks to (made on open; each connects
    /// at its first request).
    private var connections: [TargetConnection] = []
    /// `spread: random`: picks the instance of every request; otherwise always the first (and only).
    private var picker: InstancePicker
    let observe: RequestObserver?

    /// `baseURL`: one of the target's resolved base URLs (`Target.resolvedBaseURLs`).
    public convenience init(target: Target, baseURL: String) {
        self.init(target: target, baseURLs: [baseURL], randomSeed: nil, observe: nil)
    }

    /// `randomSeed` nil: every request to `baseURLs[0]`; otherwise each to an instance picked by a
    /// generator seeded with it.
    init(target: Target, baseURLs: [String], randomSeed: UInt64?, observe: RequestObserver?) {
        precondition(!baseURLs.isEmpty, "a target client needs an instance")
        self.target = target
        self.baseURLs = baseURLs
        self.picker = InstancePicker(seed: randomSeed)
        self.observe = observe
    }

    /// The client of virtual user `index` by the target's `instances.spread`: `round-robin` pins it
    /// to instance `index mod N` for the whole run; `random` picks an instance for every request
    /// from the scenario's random seed and the user's index (the same seed, the same choices).
    public static func forVirtualUser(
        _ index: Int, of target: Target, baseURLs: [String], randomSeed: UInt64, observe: RequestObserver? = nil
    ) -> TargetClient {
        switch target.spread {
        case .roundRobin:
            return TargetClient(target: target, baseURLs: [baseURLs[index % baseURLs.count]], randomSeed: nil, observe: observe)
        case .random:
            // Mixed differently from the operation generator's seed, so that the instance does
            // not follow the user an operation picks.
            let seed = (randomSeed ^ 0x7461_7267_6574_2D69) &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
            return TargetClient(target: target, baseURLs: baseURLs, randomSeed: baseURLs.count > 1 ? seed : nil, observe: observe)
        }
    }

    public func open() throws {
        connections = try baseURLs.map {
            try TargetConnection(baseURL: $0, connectTimeout: target.connectTimeoutSeconds, requestTimeout: target.requestTimeoutSeconds)
        }
    }


    public func invoke(_ invocation: Invocation) -> Completion {
        guard !connections.isEmpty else { preconditionFailure("invoke before open") }
        guard let (operation, request, instance) = plan(invocation) else {
            // TargetFit refuses such a scenario before it runs; this is the last guard (no request, not counted).
            return Self.notATargetOperation
        }
        let started = monotonicSeconds()
        return complete(connections[instance].send(request), of: operation, invocation, started: started)
    }

    static let notATargetOperation = Completion(outcome: .error, reason: "error", result: nil)

    /// The request of `invocation` by the target's templates and the instance (index into
    /// `baseURLs`) it goes to; nil when the target lacks the operation. Both engines ask here:
    /// the same requests, the same instance picks.
    func plan(_ invocation: Invocation) -> (operation: TargetOperation, request: TargetRequest, instance: Int)? {
        guard let operation = target.operations[invocation.operation.rawValue] else { return nil }
        let request = operation.request(
            arguments: Self.arguments(of: invocation), items: (invocation.items ?? []).map { ($0.productId, $0.quantity) },
            commonHeaders: target.headers)
        return (operation, request, picker.next(of: baseURLs.count))
    }

    /// The completion of a request sent at `started` by the operation's rules, counted: every
    /// request tried, one not sent (connection refused) as `fail` like the history records it
    /// (the counters add up to the history's ok, fail and unknown).
    func complete(_ outcome: TargetConnection.Outcome, of operation: TargetOperation, _ invocation: Invocation, started: Double) -> Completion {
        let completion = Self.completion(outcome, of: operation)
        observe?(invocation.operation.rawValue, completion.historyOutcome.rawValue, monotonicSeconds() - started)
        return completion
    }

    /// The completion of one request by the operation's rules.
    static func completion(_ outcome: TargetConnection.Outcome, of operation: TargetOperation) -> Completion {
        switch outcome {
        case .response(let status, let body): return completion(operation.interpret(status: status, body: body))
        case .notSent(let reason): return Completion(outcome: .error, reason: reason, result: nil)
        case .lost(let reason): return Completion(outcome: .unknown, reason: reason, result: nil)
        }
    }

    public func close() { connections.forEach { $0.close() } }

    /// The template arguments of an invocation: its ids and amounts, and its idempotency key when it has one.
    static func arguments(of invocation: Invocation) -> [String: TargetValue] {
        var values = invocation.arguments.mapValues { TargetValue.integer($0) }
        if let key = invocation.key { values["key"] = .text(key) }
        return values
    }

    /// Reasons that are the implementation saying no (nothing happened, as it should): `rejected`;
    /// any other failure is an `error` (both are `fail` in the history).
    static let refusalReasons: Set<String> = [
        "not_found", "invalid_amount", "invalid_quantity", "empty_order", "invalid_input", "insufficient_balance",
        "insufficient_stock", "sold_out", "already_issued", "already_issued_by_application_check",
        "already_issued_by_unique_constraint", "invalid_transition", "conflict", "order_not_payable", "payment_declined",
        "rate_limited", "daily_limit_exceeded",
    ]

    static func completion(_ interpretation: TargetInterpretation) -> Completion {
        switch interpretation.outcome {
        case .ok: return Completion(outcome: .success, reason: nil, result: interpretation.result ?? [:])
        case .unknown: return Completion(outcome: .unknown, reason: interpretation.reason ?? "unexpected_response", result: nil)
        case .fail:
            let reason = interpretation.reason ?? "error"
            return Completion(outcome: refusalReasons.contains(reason) ? .rejected : .error, reason: reason, result: nil)
        }
    }
}

/// Which instance each request of a virtual user goes to: always the first, or (`spread: random`)
/// one picked by a generator seeded with the user's seed.
struct InstancePicker {
    private var generator: SeededGenerator?

    init(seed: UInt64?) { generator = seed.map { SeededGenerator(seed: $0) } }

    mutating func next(of count: Int) -> Int {
        guard count > 1, generator != nil else { return 0 }
        return Int(generator!.next() % UInt64(count))
    }
}

/// One keep-alive HTTP/1.1 connection to one base URL, reopened when the server closed it while
/// idle. Every wait is bounded: the connect by `connectTimeout`, the exchange by `requestTimeout`.
final class TargetConnection {
    enum Outcome: Equatable {
        case response(status: Int, body: Data)
        /// Nothing reached the server (it refused the connection, or the connect timed out).
        case notSent(String)
        /// The request was (or may have been) sent and no complete answer came back.
        case lost(String)
    }

    let host: String
    let port: Int
    let basePath: String
    let connectTimeout: Double
    let requestTimeout: Double
    /// -1 when not connected.
    var socketDescriptor: Int32 = -1

    init(baseURL: String, connectTimeout: Double, requestTimeout: Double) throws {
        guard let components = URLComponents(string: baseURL), let host = components.host, !host.isEmpty else {
            throw TargetResolutionError(file: baseURL, message: "not an http:// URL with a host")
        }
        guard components.scheme?.lowercased() == "http" else {
            throw TargetResolutionError(file: baseURL, message: "only http:// base URLs are supported by the HTTP client (TLS is not)")
        }
        self.host = host
        self.port = components.port ?? 80
        self.basePath = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        self.connectTimeout = max(connectTimeout, 0.001)
        self.requestTimeout = max(requestTimeout, 0.001)
    }

    deinit { close() }

    /// Told the descriptor just before it is closed (an event loop stops watching it).
    var willClose: ((Int32) -> Void)?

    func close() {
        if socketDescriptor >= 0 {
            willClose?(socketDescriptor)
            Glibc.close(socketDescriptor)
        }
        socketDescriptor = -1
    }

    func send(_ request: TargetRequest) -> Outcome {
        if socketDescriptor >= 0 && closedByPeer() { close() }
        if socketDescriptor < 0, let problem = connect() { return .notSent(problem) }
        let deadline = monotonicSeconds() + requestTimeout
        let bytes = requestBytes(request)
        var sent = 0
        while true {
            switch write(bytes, sent: &sent) {
            case .done: break
            case .wouldBlock:
                guard wait(POLLOUT, until: deadline) else { return fail("timeout") }
                continue
            case .lost: return fail("connection_lost")
            }
            break
        }
        var reader = ResponseReader()
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            if let settled = settled(&reader) { return settled }
            guard wait(POLLIN, until: deadline) else { return fail("timeout") }
            if let settled = chunk.withUnsafeMutableBytes({ receive(into: &reader, buffer: $0) }) { return settled }
        }
    }

    /// The bytes of `request` on this connection (HTTP/1.1, keep-alive).
    func requestBytes(_ request: TargetRequest) -> [UInt8] {
        var head = "\(request.method) \(basePath)\(request.path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in request.headers { head += "\(name): \(value)\r\n" }
        let body = request.body ?? Data()
        if request.body != nil || ["POST", "PUT", "PATCH"].contains(request.method) { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + Array(body)
    }

    enum WriteProgress { case done, wouldBlock, lost }

    /// Sends what is left of `bytes` from `sent` on without blocking, as far as the socket takes it.
    func write(_ bytes: [UInt8], sent: inout Int) -> WriteProgress {
        while sent < bytes.count {
            let from = sent
            let written = bytes.withUnsafeBytes { Glibc.send(socketDescriptor, $0.baseAddress! + from, bytes.count - from, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? .wouldBlock : .lost
            }
            sent += written
        }
        return .done
    }

    /// The outcome once `reader` holds a whole response (or a malformed one); nil: read more.
    func settled(_ reader: inout ResponseReader) -> Outcome? {
        if let done = reader.complete() {
            if done.close { close() }
            return .response(status: done.status, body: done.body)
        }
        return reader.malformed ? fail("unexpected_response") : nil
    }

    /// One non-blocking read into `reader`: the outcome if the connection ended it, nil otherwise
    /// (bytes read, or none ready yet; `settled` tells whether the response is whole).
    func receive(into reader: inout ResponseReader, buffer: UnsafeMutableRawBufferPointer) -> Outcome? {
        let count = recv(socketDescriptor, buffer.baseAddress!, buffer.count, Int32(MSG_DONTWAIT))
        if count > 0 {
            reader.append(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        } else if count == 0 {
            // Closed: a response without a length ends here; anything else was cut short.
            if let done = reader.completeAtClose() {
                close()
                return .response(status: done.status, body: done.body)
            }
            return fail("connection_lost")
        } else if errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK {
            return fail("connection_lost")
        }
        return nil
    }

    func fail(_ reason: String) -> Outcome {
        close()
        return .lost(reason)
    }

    /// An idle keep-alive connection the server has closed reads as end of file at once.
    private func closedByPeer() -> Bool {
        var descriptor = pollfd(fd: socketDescriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(socketDescriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }

    private func wait(_ event: Int32, until deadline: Double) -> Bool {
        while true {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return false }
            var descriptor = pollfd(fd: socketDescriptor, events: Int16(event), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, min(left * 1000, 60_000))))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return true }  // the next call reports the error
        }
    }

    /// Opens a non-blocking connection within `connectTimeout`; the reason when it could not.
    private func connect() -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return "connection_failed" }
        defer { freeaddrinfo(found) }
        var address: UnsafeMutablePointer<addrinfo>? = first
        while let current = address {
            address = current.pointee.ai_next
            let descriptor = Self.socket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
            guard descriptor >= 0 else { continue }
            let result = Glibc.connect(descriptor, current.pointee.ai_addr, current.pointee.ai_addrlen)
            if result == 0 || errno == EINPROGRESS {
                socketDescriptor = descriptor
                if result == 0 { return nil }
                if wait(POLLOUT, until: monotonicSeconds() + connectTimeout) {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 { return nil }
                }
                socketDescriptor = -1
            }
            Glibc.close(descriptor)
        }
        return "connection_failed"
    }
}

extension TargetConnection {
    /// A non-blocking TCP socket without Nagle's delay (requests are small and wait for answers).
    static func socket(_ family: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
        let descriptor = Glibc.socket(family, type, proto)
        guard descriptor >= 0 else { return descriptor }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var yes: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
        return descriptor
    }

    /// An address `getaddrinfo` gave for the host, kept (the event-driven client resolves once, at open).
    struct Address {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: Int32 = 0
        var type: Int32 = 0
        var proto: Int32 = 0
    }

    /// The host's addresses, in `getaddrinfo`'s order (empty when it cannot be resolved).
    func addresses() -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return [] }
        defer { freeaddrinfo(found) }
        var result: [Address] = []
        var address: UnsafeMutablePointer<addrinfo>? = first
        while let current = address {
            address = current.pointee.ai_next
            var kept = Address(
                length: current.pointee.ai_addrlen, family: current.pointee.ai_family, type: current.pointee.ai_socktype,
                proto: current.pointee.ai_protocol)
            withUnsafeMutableBytes(of: &kept.storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: current.pointee.ai_addr, count: Int(current.pointee.ai_addrlen)))
            }
            result.append(kept)
        }
        return result
    }
}

/// Reads one HTTP/1.1 response: status, headers, a body by Content-Length, chunks, or to the close.
struct ResponseReader {
    private var bytes: [UInt8] = []
    private(set) var malformed = false

    mutating func append(_ more: ArraySlice<UInt8>) { bytes.append(contentsOf: more) }
    mutating func append(_ more: UnsafeRawBufferPointer) { bytes.append(contentsOf: more) }

    private struct Head {
        let status: Int
        let bodyStart: Int
        let length: Int?
        let chunked: Bool
        let close: Bool
    }

    private mutating func head() -> Head? {
        guard let end = bytes.firstRange(of: [13, 10, 13, 10]) else { return nil }
        let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            malformed = true
            return nil
        }
        var length: Int?, chunked = false, close = statusLine[0] == "HTTP/1.0"
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" { chunked = value.contains("chunked") }
            if name == "connection" { close = value.contains("close") ? true : value.contains("keep-alive") ? false : close }
        }
        let noBody = status / 100 == 1 || status == 204 || status == 304
        return Head(status: status, bodyStart: end.upperBound, length: noBody ? 0 : length, chunked: chunked && !noBody, close: close)
    }

    /// The response once it is whole (`close`: the server ends the connection after it).
    mutating func complete() -> (status: Int, body: Data, close: Bool)? {
        guard let head = head() else { return nil }
        if head.chunked {
            var body: [UInt8] = []
            var index = head.bodyStart
            while true {
                guard let lineEnd = bytes[index...].firstRange(of: [13, 10]) else { return nil }
                let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    malformed = true
                    return nil
                }
                let dataStart = lineEnd.upperBound
                if size == 0 {
                    // Trailers (none expected) end with an empty line.
                    guard bytes[dataStart...].firstRange(of: [13, 10]) != nil else { return nil }
                    return (head.status, Data(body), head.close)
                }
                guard bytes.count >= dataStart + size + 2 else { return nil }
                body += bytes[dataStart..<(dataStart + size)]
                index = dataStart + size + 2
            }
        }
        guard let length = head.length else { return nil }
        guard bytes.count >= head.bodyStart + length else { return nil }
        return (head.status, Data(bytes[head.bodyStart..<(head.bodyStart + length)]), head.close)
    }

    /// At the server's close: a response without a length (or chunks) is what was read.
    mutating func completeAtClose() -> (status: Int, body: Data)? {
        guard let head = head(), head.length == nil, !head.chunked else { return nil }
        return (head.status, Data(bytes[head.bodyStart...]))
    }
}
