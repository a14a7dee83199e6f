import CMicroHTTPD
import Foundation

// libmicrohttpd's start-up, its response queueing and its connection notices, shared by
// `HTTPServer` and `APIServer`.

/// The daemon's start-up, shared by `HTTPServer` and `APIServer`: the bind address, the limits
/// as daemon options, the connection callbacks and the request handler, each given `context` (a
/// reference the caller retained for as long as the daemon runs, and releases when this throws).
/// Returns the running daemon; a bind that fails is an `HTTPServerError` naming the address.
func startMicroHTTPDaemon(
    address: HTTPBindAddress, limits: HTTPServer.Limits, extraFlags: UInt32 = 0,
    handler: MHD_AccessHandlerCallback, notifyConnection: MHD_NotifyConnectionCallback,
    notifyCompleted: MHD_RequestCompletedCallback, context: UnsafeMutableRawPointer
) throws -> OpaquePointer {
    guard var socketAddress = HTTPBindAddress.socketAddress(host: address.host, port: address.port) else {
        throw HTTPServerError("cannot listen on \(address)")
    }
    // epoll (Linux): the cost of a poll does not grow with the number of idle connections.
    var flags = MHD_USE_EPOLL_INTERNAL_THREAD.rawValue | extraFlags
    if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
    errno = 0
    let started: OpaquePointer? = socketAddress.withUnsafeMutableBytes { socketAddressBytes in
        // Options are passed as their C types: size_t as Int, unsigned int as UInt32; callbacks
        // travel through the va_list as plain pointers.
        let options: [CVarArg] = [
            MHD_OPTION.SOCK_ADDR.rawValue, socketAddressBytes.baseAddress!.assumingMemoryBound(to: sockaddr.self),
            MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue, limits.connectionMemoryBytes,
            MHD_OPTION.CONNECTION_TIMEOUT.rawValue, UInt32(limits.connectionTimeoutSeconds),
            MHD_OPTION.CONNECTION_LIMIT.rawValue, UInt32(limits.maxConnections),
            MHD_OPTION.THREAD_POOL_SIZE.rawValue, UInt32(max(1, limits.threads)),
            MHD_OPTION.NOTIFY_CONNECTION.rawValue, unsafeBitCast(notifyConnection, to: OpaquePointer.self),
            OpaquePointer(context),
            MHD_OPTION.NOTIFY_COMPLETED.rawValue, unsafeBitCast(notifyCompleted, to: OpaquePointer.self),
            OpaquePointer(context),
            MHD_OPTION.END.rawValue,
        ]
        return withVaList(options) { arguments in
            MHD_start_daemon_va(flags, UInt16(address.port), nil, nil, handler, context, arguments)
        }
    }
    guard let started else {
        let reason = errno != 0 ? String(cString: strerror(errno)) : "libmicrohttpd refused to start"
        throw HTTPServerError("cannot listen on \(address): \(reason)")
    }
    return started
}

/// Queues `response` on `connection` (from the access handler).
func queueResponse(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
    var body = response.body
    let created: OpaquePointer? = body.withUnsafeMutableBytes { bytes in
        // MUST_COPY: libmicrohttpd keeps its own copy, so the Swift array may go away at once.
        MHD_create_response_from_buffer(bytes.count, bytes.baseAddress, .RESPMEM_MUST_COPY)
    }
    guard let created else { return .NO }
    defer { MHD_destroy_response(created) }
    _ = MHD_add_response_header(created, "Content-Type", response.contentType)
    for header in response.extraHeaders {
        _ = MHD_add_response_header(created, header.name, header.value)
    }
    return MHD_queue_response(connection, UInt32(response.status), created)
}

extension ConnectionTracker {
    /// A connection notice of libmicrohttpd: started (the arrival clock starts) or closed.
    func note(_ connection: OpaquePointer, _ code: MHD_ConnectionNotificationCode) {
        if code.rawValue == 0 {  // MHD_CONNECTION_NOTIFY_STARTED (1 is CLOSED)
            started(connection, socket: lockproof_mhd_connection_fd(connection))
        } else {
            closed(connection)
        }
    }
}
