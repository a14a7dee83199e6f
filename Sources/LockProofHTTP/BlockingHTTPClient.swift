import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response as read off the wire.
public struct HTTPClientResponse: Sendable {
    public let status: Int
    public let headers: [HTTPHeader]
    public let body: [UInt8]

    /// The first header of that name, compared case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A minimal HTTP/1.1 client over a blocking socket, one connection per request
/// (`Connection: close`). It exists so that tests and the benchmark can send exactly the bytes
/// they mean, hostile ones included, and so that a hung server fails a call after
/// `timeoutSeconds` instead of blocking its caller forever.
public enum BlockingHTTPClient {
    public static func get(
        host: String = "127.0.0.1", port: Int, path: String, headers: [HTTPHeader] = [], timeoutSeconds: Double = 30
    ) throws -> HTTPClientResponse {
        try request(method: "GET", host: host, port: port, path: path, headers: headers, timeoutSeconds: timeoutSeconds)
    }

    public static func request(
        method: String, host: String = "127.0.0.1", port: Int, path: String, headers: [HTTPHeader] = [],
        body: [UInt8] = [], timeoutSeconds: Double = 30
    ) throws -> HTTPClientResponse {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return try send(
            raw: Array(text.utf8) + body, host: host, port: port, timeoutSeconds: timeoutSeconds,
            responseHasBody: method != "HEAD")
    }

    /// Sends `raw` as is and reads the response until the server closes the connection.
    /// `responseHasBody` is false for a HEAD request, whose Content-Length announces a body never sent.
    public static func send(
        raw: [UInt8], host: String = "127.0.0.1", port: Int, timeoutSeconds: Double = 30, responseHasBody: Bool = true
    ) throws -> HTTPClientResponse {
        try parse(exchange(raw: raw, host: host, port: port, timeoutSeconds: timeoutSeconds), hasBody: responseHasBody)
    }

    /// Sends `raw` as is and returns every byte the server sent until it closed the connection
    /// (e.g. to show that a HEAD response carries no body).
    public static func exchange(raw: [UInt8], host: String = "127.0.0.1", port: Int, timeoutSeconds: Double = 30) throws
        -> [UInt8]
    {
        guard let address = HTTPBindAddress.socketAddress(host: host, port: port) else {
            throw HTTPServerError("'\(host)' is not an IP address")
        }
        let family = host.contains(":") ? AF_INET6 : AF_INET
        let socketDescriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw systemError("socket") }
        defer { close(socketDescriptor) }
        var timeout = timeval(
            tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1_000_000))
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socketDescriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = address.withUnsafeBytes { bytes in
            connect(
                socketDescriptor, bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(bytes.count))
        }
        guard connected == 0 else { throw systemError("connect to \(host):\(port)") }

        var sent = 0
        while sent < raw.count {
            // MSG_NOSIGNAL: a server that refuses a request and closes early must not kill us with SIGPIPE.
            let written = raw.withUnsafeBytes { bytes in
                Glibc.send(socketDescriptor, bytes.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                // The server may have answered (e.g. 431) and closed before reading everything: read it.
                if errno == EPIPE || errno == ECONNRESET { break }
                throw systemError("send")
            }
            sent += written
        }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress!, $0.count, 0) }
            if count > 0 {
                received.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                break
            } else if errno == EINTR {
                continue
            } else if errno == ECONNRESET && !received.isEmpty {
                break
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                throw HTTPServerError("no complete response from \(host):\(port) within \(timeoutSeconds) s")
            } else {
                throw systemError("recv")
            }
        }
        return received
    }

    static func parse(_ bytes: [UInt8], hasBody: Bool) throws -> HTTPClientResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headerEnd = bytes.firstRange(of: separator) else {
            throw HTTPServerError("malformed response (\(bytes.count) bytes, no end of headers)")
        }
        let head = String(decoding: bytes[..<headerEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
            throw HTTPServerError("malformed status line in response")
        }
        let headers = lines.compactMap { line -> HTTPHeader? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return HTTPHeader(
                name: String(line[..<colon]),
                value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = hasBody ? Array(bytes[headerEnd.upperBound...]) : []
        if hasBody, let length = headers.first(where: { $0.name.lowercased() == "content-length" }).flatMap({ Int($0.value) }) {
            guard body.count >= length else {
                throw HTTPServerError("response body cut short: \(body.count) of \(length) bytes")
            }
            body = Array(body[..<length])
        }
        return HTTPClientResponse(status: status, headers: headers, body: body)
    }

    private static func systemError(_ operation: String) -> HTTPServerError {
        HTTPServerError("\(operation) failed: \(String(cString: strerror(errno)))")
    }
}
