import Foundation
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps

/// machine.ensure through the executor: libvirt VMs on the test driver, Mac minis woken by a real
/// Wake-on-LAN packet to a loopback listener that then "powers on" the machine.
@Suite struct MachineStepsTests {
    @Test func ensureCreatesVMsAndWakesMetalThenChangesNothing() async throws {
        let wol = try WakeListener()
        defer { wol.close() }
        let lab = try TalosLab { inventory in
            guard let index = inventory.providers.firstIndex(where: { $0.name.value == "lab-metal" }) else { return }
            inventory.providers[index].settings["port"] = Located("\(wol.port)", at: inventory.cluster.name.location)
            inventory.providers[index].settings["bootTimeout"] = Located("20s", at: inventory.cluster.name.location)
        }
        for node in lab.inventory.nodes where node.machine.provider.value == "lab-metal" {
            wol.machines[node.machine.mac!.value.bytes] = node.address.value.description
        }
        var services = Services()
        let providers = MachineProviders()
        services[MachineProviders.self] = providers
        let book = """
            apiVersion: provision/v1
            kind: Playbook
            name: machines
            steps:
              - {id: machine, uses: machine.ensure, forEach: all, timeout: 60s}
            """
        let first = try await lab.run(book, services: services)
        #expect(first.succeeded, "\(first.errors)")
        #expect(first.outcomes.values.allSatisfy { $0 == .applied }, "\(first.outcomes)")
        #expect(Set(wol.woken) == Set(lab.inventory.nodes.filter { $0.machine.provider.value == "lab-metal" }.map(\.address.value.description)))

        let second = try await lab.run(book, services: services)
        #expect(second.outcomes.values.allSatisfy { $0 == .satisfied }, "a second run changes nothing: \(second.outcomes)")

        let delete = """
            apiVersion: provision/v1
            kind: Playbook
            name: delete
            steps:
              - {id: delete, uses: machine.delete, forEach: "name=mini01"}
            """
        let refused = try await lab.run(delete, services: services)
        #expect(refused.refused)
        #expect(refused.errors["delete@mini01"]?.contains("bare metal") == true, "\(refused.errors)")
    }
}

/// A UDP listener for magic packets: for a known MAC it starts listening on that machine's
/// address:50000, as a woken Mac mini's Talos API would.
final class WakeListener: @unchecked Sendable {
    // @unchecked: `machines` is filled before any packet is sent; `woken` and `servers` under `lock`.
    let descriptor: Int32
    let port: Int
    var machines: [[UInt8]: String] = [:]
    private let lock = NSLock()
    private var wokenAddresses: [String] = []
    private var servers: [Int32] = []

    var woken: [String] { lock.withLock { wokenAddresses } }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        descriptor = fd
        _ = IPv4Socket.bind(fd, host: "127.0.0.1", port: 0)
        port = IPv4Socket.localPort(fd)
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { return }
                guard count == 102, buffer.prefix(6).allSatisfy({ $0 == 0xFF }) else { continue }
                let mac = Array(buffer[6..<12])
                if let host = machines[mac] { powerOn(host) }
            }
        }
    }

    func powerOn(_ host: String) {
        lock.withLock {
            guard !wokenAddresses.contains(host) else { return }
            wokenAddresses.append(host)
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var reuse: Int32 = 1
            setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
            _ = IPv4Socket.bind(server, host: host, port: 50000)
            listen(server, 16)
            servers.append(server)
            // Accept and close, as a live Talos API would take the connection.
            Thread.detachNewThread {
                while true {
                    let client = accept(server, nil, nil)
                    if client < 0 { return }
                    _ = Glibc.close(client)
                }
            }
        }
    }

    func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        _ = Glibc.close(descriptor)
        lock.withLock { for server in servers { shutdown(server, Int32(SHUT_RDWR)); _ = Glibc.close(server) } }
    }
}
