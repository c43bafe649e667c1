import Foundation
import Lab
import Providers
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// Our real Wake-on-LAN sender boots a simulated Mac mini through the lab's listener.
@Suite struct LabWakeOnLANTests {
    @Test func magicPacketPowersOnOnlyThatMini() async throws {
        let lab = try LabFixture(nodes: ["mini01", "mini02"])
        let mini01 = try #require(MACAddress("a4:83:e7:00:00:61"))
        let mini02 = try #require(MACAddress("a4:83:e7:00:00:62"))
        let listener = try LabWakeOnLAN(host: "127.0.0.1", port: 0, machines: [mini01: lab.node("mini01"), mini02: lab.node("mini02")])
        defer { listener.close() }
        #expect(await !lab.node("mini01").powered)

        try WakeOnLAN.send(to: mini01, broadcast: try #require(IPv4Address("127.0.0.1")), port: listener.port)
        let version = try await eventually { try await lab.client("mini01", .maintenance(spkiPin: nil)).version() }
        #expect(version.version.tag == "v1.13.0")
        #expect(await !lab.node("mini02").powered, "only the MAC in the packet wakes")

        // Not a magic packet (wrong repeat): nothing happens.
        var bogus = WakeOnLAN.packet(for: mini02)
        bogus[100] ^= 0xFF
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let target = try #require(IPv4Socket.address("127.0.0.1", port: listener.port))
        _ = IPv4Socket.withSockaddr(target) { sendto(fd, bogus, bogus.count, 0, $0, $1) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await !lab.node("mini02").powered)
    }
}
