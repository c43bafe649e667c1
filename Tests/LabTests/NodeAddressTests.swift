import Foundation
@testable import Lab
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps
@testable import TalosKit

/// A node in maintenance has the address DHCP gave it (Talos runs DHCP on every link until a
/// config arrives); its config gives it its inventory address. The lab's router models it: a pool,
/// and reservations that tests turn on and off.
@Suite struct NodeAddressTests {
    /// w1 has no reservation: it sits at a pool address, is found there by its MAC (the scan),
    /// gets its config there, and comes back at its inventory address.
    @Test func aNodeWithoutAReservationIsFoundByItsMACAndComesBackAtItsAddress() async throws {
        let lab = try TalosLab(nodes: ["cp1", "w1"], router: (reservations: ["cp1": 11], scan: true))
        await lab.cluster.powerOnAll()
        let w1 = try #require(lab.cluster.node("w1"))
        let lease = try #require(await w1.address)
        #expect(lease.hasSuffix(".100"), "w1 took the pool's first address: \(lease)")
        let run = try await lab.run()
        #expect(run.succeeded, "\(run.errors)")
        #expect(await w1.address == lab.inventory.node(named: "w1")!.address.value.description, "its config gave it its inventory address")
        #expect(try await lab.admin("w1").version().version.tag == "v1.13.2", "it answers there, as this cluster's node")
        #expect(await w1.calls.filter { $0.method == "ApplyConfiguration" }.count == 1)
        let notes = lab.cluster.record.entries.filter { $0.node == "w1" && $0.event == "address" }.compactMap(\.detail)
        #expect(notes.first?.contains("\(lease) (DHCP, in maintenance)") == true && notes.last?.hasPrefix("answers at \(lab.inventory.node(named: "w1")!.address.value)") == true, "\(notes)")
    }

    /// The router reserves cp1's address for w1's machine (a reservation typed against the wrong
    /// MAC). What answers at cp1's address is w1: it never gets cp1's config. With the scan each
    /// machine is found by its own MAC and gets its own config.
    @Test func aReservationPointingAtAnotherNodesAddressNeverGetsThisNodesConfig() async throws {
        let lab = try TalosLab(nodes: ["cp1", "w1"], router: (reservations: ["w1": 11], scan: true))
        await lab.cluster.powerOnAll()
        let run = try await lab.run()
        #expect(run.succeeded, "\(run.errors)")
        for name in ["cp1", "w1"] {
            let node = try #require(lab.cluster.node(name))
            #expect(await node.config?.hostname == name, "\(name)'s machine got \(name)'s config")
            #expect(await node.address == lab.inventory.node(named: name)!.address.value.description)
        }
    }

    /// The same wrong reservation without a scan: nothing is sent to anyone, and the failure says
    /// whose machine answers at cp1's address and what to reserve.
    @Test func withoutAScanTheWrongReservationIsNamedAndNothingIsSent() async throws {
        let lab = try TalosLab(nodes: ["cp1", "w1"], router: (reservations: ["w1": 11], scan: false))
        await lab.cluster.powerOnAll()
        let sink = CollectingSink()
        let run = try await lab.run(sinks: [sink])  // the maintenance waits time out (60 s)
        #expect(!run.succeeded)
        // Said as soon as it is seen (the timeout's own last look may have timed out on a loaded machine).
        let warned = sink.all.filter { $0.kind == .log }.compactMap(\.message).filter { $0.contains("answers for w1") }
        #expect(warned.count == 1 && warned[0].contains("reservation for w1's MAC points at cp1's address"), "\(warned)")
        let error = run.errors["maintenance@cp1"] ?? ""
        #expect(error.contains("reserve \(lab.inventory.node(named: "cp1")!.address.value) for MAC 52:54:00:00:00:11"), "\(error)")
        for node in lab.cluster.nodes { #expect(await !node.calls.contains { $0.method == "ApplyConfiguration" }, "\(node.spec.name) got nothing") }
    }

    /// The scan dials only the node network: a /24, without the gateway or the VIP.
    @Test func theScanStaysInsideItsNetwork() throws {
        let scan = MaintenanceScan(network: IPv4Network("127.78.0.0/24")!, skip: [IPv4Address("127.78.0.1")!, IPv4Address("127.78.0.10")!])
        let addresses = scan.addresses.map(\.description)
        #expect(addresses.count == 252 && addresses.first == "127.78.0.2" && addresses.last == "127.78.0.254" && !addresses.contains("127.78.0.10"))
        #expect(MaintenanceScan(network: IPv4Network("127.78.0.0/23")!).addresses.isEmpty, "never wider than a /24")
    }
}
