import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The few raw-socket chores the Wake-on-LAN sender, the TCP probe and the tests' loopback peers
/// share: an IPv4 `sockaddr`, bind, connect, and the port the kernel picked.
public enum IPv4Socket {
    public static func address(_ host: String, port: Int) -> sockaddr_in? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        return address
    }

    /// Calls `body` with `address` as the generic `sockaddr` the C calls take.
    public static func withSockaddr<T>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = address
        return withUnsafePointer(to: &copy) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    public static func bind(_ fd: Int32, host: String, port: Int) -> Bool {
        guard let address = address(host, port: port) else { return false }
        return withSockaddr(address) { Glibc.bind(fd, $0, $1) } == 0
    }

    /// The local port of a bound socket (after binding port 0).
    public static func localPort(_ fd: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
