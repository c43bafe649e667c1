import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// The lab's Wake-on-LAN: a UDP listener on the metal provider's (loopback) broadcast address and
/// port. A well-formed magic packet for a simulated Mac mini's MAC wakes that node if it can be
/// woken (`SimulatedTalosNode.wake`: armed by its config, of hardware that wakes from power-off),
/// so the orchestrator's real WoL code path is what powers lab metal on, and fails where it would.
public final class LabWakeOnLAN: @unchecked Sendable {
    // @unchecked: `descriptor` is set once; the reader thread only reads `machines`, fixed at init.
    let descriptor: Int32
    public let port: Int
    let machines: [[UInt8]: SimulatedTalosNode]

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `machines`: each node's MAC. Port 0 picks a free one (tests).
    /// `powerOnDelay`: from the packet to the firmware starting (a Mac mini takes a few seconds).
    public init(host: String, port: Int, machines: [MACAddress: SimulatedTalosNode], powerOnDelay: Duration = .zero) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0, IPv4Socket.bind(fd, host: host, port: port) else {
            if fd >= 0 { _ = Glibc.close(fd) }
            throw Failure(description: "the lab's Wake-on-LAN listener cannot bind \(host):\(port): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
        self.port = IPv4Socket.localPort(fd)
        self.machines = Dictionary(uniqueKeysWithValues: machines.map { ($0.key.bytes, $0.value) })
        let table = self.machines
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { return }
                guard let mac = Self.target(of: Array(buffer.prefix(count))), let node = table[mac] else { continue }
                Task {
                    if powerOnDelay > .zero { try? await Task.sleep(for: powerOnDelay) }
                    await node.wake()
                }
            }
        }
    }

    /// The MAC a magic packet wakes: 6 x 0xFF, then the same 6 bytes 16 times; nil for anything else.
    static func target(of packet: [UInt8]) -> [UInt8]? {
        guard packet.count >= 102, packet.prefix(6).allSatisfy({ $0 == 0xFF }) else { return nil }
        let mac = Array(packet[6..<12])
        for copy in 1..<16 where Array(packet[(6 + copy * 6)..<(12 + copy * 6)]) != mac { return nil }
        return mac
    }

    public func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        _ = Glibc.close(descriptor)
    }
}
