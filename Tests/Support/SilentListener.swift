import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback TCP port that accepts connections (the kernel completes the handshake into the
/// backlog) and never answers a byte: what a hung server or a black-holing proxy looks like.
public final class SilentListener: Sendable {
    public let port: Int
    private let socketDescriptor: Int32

    public init() throws {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw SilentListenerError.socket(errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socketDescriptor, 128) == 0 else {
            close(socketDescriptor)
            throw SilentListenerError.socket(errno)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketDescriptor, $0, &length) }
        }
        self.socketDescriptor = socketDescriptor
        port = Int(UInt16(bigEndian: actual.sin_port))
    }

    deinit { close(socketDescriptor) }
}

public enum SilentListenerError: Error { case socket(Int32) }
