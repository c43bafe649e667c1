import Foundation
import Lab
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps

/// machine.ensure through the executor: libvirt VMs on the test driver, and the lab's simulated Mac
/// minis woken by our real Wake-on-LAN packets to the lab's listener (their Talos API then answers).
@Suite struct MachineStepsTests {
    @Test func ensureCreatesVMsAndWakesMetalThenChangesNothing() async throws {
        var lab = try TalosLab()
        let metal = lab.inventory.nodes.filter { $0.machine.provider.value == "lab-metal" }
        let wol = try LabWakeOnLAN(host: "127.0.0.1", port: 0, machines: Dictionary(uniqueKeysWithValues: metal.map {
            ($0.machine.mac!.value, lab.cluster.node($0.name.value)!)
        }))
        defer { wol.close() }
        let factory = try await LabImageFactory(host: Loopback.address(), port: 0)
        defer { Task { await factory.close() } }
        let at = lab.inventory.cluster.name.location
        if let index = lab.inventory.providers.firstIndex(where: { $0.name.value == "lab-metal" }) {
            lab.inventory.providers[index].settings["port"] = Located("\(wol.port)", at: at)
            lab.inventory.providers[index].settings["bootTimeout"] = Located("20s", at: at)
        }
        if let index = lab.inventory.providers.firstIndex(where: { $0.name.value == "lab-libvirt" }) {
            lab.inventory.providers[index].settings["imageFactory"] = Located(factory.url, at: at)
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
        for node in lab.cluster.nodes {
            let isMetal = metal.contains { $0.name.value == node.spec.name }
            #expect(await node.powered == isMetal, "\(node.spec.name): only the minis are woken")
        }

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
