import Foundation
import Lab
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps

/// machine.ensure through the executor: libvirt VMs on the test driver, and the lab's simulated Mac
/// minis, which our real Wake-on-LAN packets reach through the lab's listener.
@Suite struct MachineStepsTests {
    @Test func ensureCreatesVMsFindsMetalOnThenChangesNothing() async throws {
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
            lab.inventory.providers[index].settings["bootTimeout"] = Located("2s", at: at)
        }
        if let index = lab.inventory.providers.firstIndex(where: { $0.name.value == "lab-libvirt" }) {
            lab.inventory.providers[index].settings["imageFactory"] = Located(factory.url, at: at)
        }
        // The minis were booted by hand (their power buttons); mini02 is then shut down, before anything armed its NIC.
        for mini in metal {
            await lab.cluster.node(mini.name.value)!.powerOn()
            try await lab.cluster.node(mini.name.value)!.waitUntilListening()
        }
        await lab.cluster.node("mini02")!.powerOff()
        let mini02 = try #require(lab.inventory.node(named: "mini02"))
        lab.inventory.nodes.removeAll { $0.name.value == "mini02" }
        var services = Services()
        let providers = MachineProviders()
        services[MachineProviders.self] = providers
        let book = """
            apiVersion: provision/v1
            kind: Playbook
            name: machines
            steps:
              - {id: preflight, uses: machine.preflight}
              - {id: machine, uses: machine.ensure, forEach: all, timeout: 60s, needs: [preflight]}
            """
        let first = try await lab.run(book, services: services)
        #expect(first.succeeded, "\(first.errors)")
        #expect(first.outcomes["machine@mini01"] == .satisfied, "a mini that is on is left alone: \(first.outcomes)")
        #expect(first.outcomes.filter { $0.key != "machine@mini01" }.values.allSatisfy { $0 == .applied }, "\(first.outcomes)")

        let second = try await lab.run(book, services: services)
        #expect(second.outcomes.values.allSatisfy { $0 == .satisfied }, "a second run changes nothing: \(second.outcomes)")

        // Nothing armed mini02's Wake-on-LAN: the packets wake nothing and the failure names the button.
        lab.inventory.nodes.append(mini02)
        let asleep = try await lab.run(book.replacingOccurrences(of: "forEach: all", with: "forEach: \"name=mini02\""), services: services)
        #expect(!asleep.succeeded)
        #expect(asleep.errors["machine@mini02"]?.contains("press mini02's power button") == true, "\(asleep.errors)")
        #expect(await !lab.cluster.node("mini02")!.powered)


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
