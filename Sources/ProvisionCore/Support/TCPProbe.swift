import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether something accepts TCP connections at an address, decided within `timeout` and without
/// blocking the calling thread longer than that (a blocking connect to a full backlog can take
/// seconds, and a concurrency-pool thread must never sit in one).
public enum TCPProbe {
    public static func answers(host: String, port: Int, timeout: Duration = .milliseconds(500)) -> Bool {
        guard NetworkPolicy.current.permits(host: host) else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        guard let address = IPv4Socket.address(host, port: port) else { return false }
        let result = IPv4Socket.withSockaddr(address) { connect(fd, $0, $1) }
        if result == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&descriptor, 1, milliseconds) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}
