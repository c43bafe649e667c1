import Foundation
import ProvisionCore
import Testing
@testable import Providers

/// The magic packet, received by a listener on loopback (the only place tests may send to).
@Suite struct WakeOnLANTests {
    @Test func packetReachesALoopbackListenerIntact() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        #expect(IPv4Socket.bind(fd, host: "127.0.0.1", port: 0))
        let port = IPv4Socket.localPort(fd)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let mac = try #require(MACAddress("a4:83:e7:00:00:61"))
        try WakeOnLAN.send(to: mac, broadcast: try #require(IPv4Address("127.0.0.1")), port: port, count: 1)
        var buffer = [UInt8](repeating: 0, count: 512)
        let received = recv(fd, &buffer, buffer.count, 0)
        #expect(received == 102)
        let packet = Array(buffer.prefix(max(0, received)))
        #expect(packet.prefix(6).allSatisfy { $0 == 0xFF })
        for copy in 0..<16 {
            #expect(Array(packet[(6 + copy * 6)..<(12 + copy * 6)]) == [0xA4, 0x83, 0xE7, 0x00, 0x00, 0x61])
        }
    }

    @Test func timeoutMessageTellsWhatToCheck() {
        let text = WakeOnLAN.timeoutMessage(node: "mini02", address: "192.168.30.62", waited: "10m", link: "enp3s0f0")
        #expect(text.hasPrefix("mini02 did not appear at 192.168.30.62:50000 within 10m of Wake-on-LAN packets."))
        #expect(text.contains("arms Wake-on-LAN on enp3s0f0") && text.contains("press mini02's power button"))
        #expect(WakeOnLAN.timeoutMessage(node: "mini02", address: "192.168.30.62", waited: "10m", link: nil).contains("set machine.link"))
    }
}
