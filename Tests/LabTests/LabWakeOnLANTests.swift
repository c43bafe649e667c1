import Foundation
import Providers
import ProvisionCore
import Testing
import TestSupport
@testable import Lab
@testable import TalosKit

/// Our real Wake-on-LAN sender against the lab's listener, which wakes a machine only as hardware
/// would: armed by a config that ran (an EthernetConfig for the NIC's kernel name, `wakeOnLan:
/// [magic]`) and of a class that powers on from a packet when off.
@Suite struct LabWakeOnLANTests {
    @Test func onlyAnArmedMiniOfWakingHardwareWakes() async throws {
        // mini01: armed (its rendered config names its link) and of waking hardware; mini02: armed, but
        // its hardware does not wake from power-off (the lab's default for a Mac mini); w1: waking
        // hardware, but its config arms nothing. cp1 runs trustd, which issues the workers' API certificates.
        let names = ["mini01", "mini02", "w1"]
        let lab = try LabFixture(nodes: ["cp1"] + names, wakesFromPowerOff: ["mini01", "w1"])
        #expect(try lab.config("mini01").contains("kind: EthernetConfig"))
        #expect(try !lab.config("w1").contains("kind: EthernetConfig"))
        try await lab.configure(["cp1"] + names)
        for name in names {
            #expect(await lab.node(name).wakeArmed == (name != "w1"), "\(name)")
            _ = await lab.node(name).requestShutdown()
        }
        try await eventually { for name in names where await lab.node(name).powered { throw PeerError("\(name) is still on") } }

        var machines: [MACAddress: SimulatedTalosNode] = [:]
        for name in names { machines[try #require(lab.inventory.node(named: name)?.machine.mac?.value)] = lab.node(name) }
        let listener = try LabWakeOnLAN(host: "127.0.0.1", port: 0, machines: machines)
        defer { listener.close() }
        let broadcast = try #require(IPv4Address("127.0.0.1"))
        for mac in machines.keys { try WakeOnLAN.send(to: mac, broadcast: broadcast, port: listener.port) }

        let admin = try lab.admin
        _ = try await eventually { try await lab.client("mini01", admin).version() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await !lab.node("mini02").powered, "armed, but a Mac mini is not known to wake from power-off")
        #expect(await !lab.node("w1").powered, "nothing armed its NIC")

        // A power cut loses the NIC's setting: even waking hardware stays off after it.
        await lab.node("mini01").powerOff()
        try WakeOnLAN.send(to: try #require(lab.inventory.node(named: "mini01")?.machine.mac?.value), broadcast: broadcast, port: listener.port)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await !lab.node("mini01").powered, "after a power cut, the power button")
    }

    @Test func onlyAWellFormedPacketNamesAMachine() throws {
        let mini02 = try #require(MACAddress("a4:83:e7:00:00:62"))
        #expect(LabWakeOnLAN.target(of: WakeOnLAN.packet(for: mini02)) == mini02.bytes)
        var bogus = WakeOnLAN.packet(for: mini02)
        bogus[100] ^= 0xFF
        #expect(LabWakeOnLAN.target(of: bogus) == nil, "a wrong repeat is not a magic packet")
    }
}
