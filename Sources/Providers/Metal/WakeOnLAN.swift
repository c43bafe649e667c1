import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// Wake-on-LAN: the magic packet (6 x 0xFF, then the MAC 16 times, 102 bytes) sent over UDP to the
/// inventory's broadcast address and port. The only remote way to power on a Mac mini, and not a
/// dependable one: its NIC answers only when Talos armed it (`EthernetConfig.wakeOnLan`, 1.12+,
/// rendered from `machine.link`), and a mini is not known to wake from power-off under Linux or to
/// power on by itself after a power cut. It either wakes or it does not, so the caller waits for
/// the node's API with a clear timeout whose message names the power button.
public enum WakeOnLAN {
    public static func packet(for mac: MACAddress) -> [UInt8] {
        [UInt8](repeating: 0xFF, count: 6) + (0..<16).flatMap { _ in mac.bytes }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sends the packet `count` times (WoL is fire-and-forget over UDP; a repeat costs nothing).
    public static func send(to mac: MACAddress, broadcast: IPv4Address, port: Int = 9, count: Int = 3) throws {
        try NetworkPolicy.check(host: broadcast.description, for: "Wake-on-LAN broadcast")
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot open a UDP socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var enable: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &enable, socklen_t(MemoryLayout<Int32>.size))
        guard let address = IPv4Socket.address(broadcast.description, port: port) else {
            throw Failure(description: "\(broadcast):\(port) is not an IPv4 address and port")
        }
        let bytes = packet(for: mac)
        for _ in 0..<max(1, count) {
            let sent = IPv4Socket.withSockaddr(address) { sendto(fd, bytes, bytes.count, 0, $0, $1) }
            guard sent == bytes.count else {
                throw Failure(description: "sending the Wake-on-LAN packet to \(broadcast):\(port) failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// What to do when the packets woke nothing: most often, press the power button.
    public static func timeoutMessage(node: String, address: String, waited: String, link: String?) -> String {
        let armed = link.map { "its config arms Wake-on-LAN on \($0) once it has run Talos 1.12+" } ?? "nothing arms its Wake-on-LAN (set machine.link)"
        return "\(node) did not appear at \(address):50000 within \(waited) of Wake-on-LAN packets. A Mac mini wakes from one only if \(armed) "
            + "and its firmware wakes from power-off; after a power cut or a shutdown, press \(node)'s power button. "
            + "If it is on: does it boot from its disk or the Talos USB stick?"
    }
}
