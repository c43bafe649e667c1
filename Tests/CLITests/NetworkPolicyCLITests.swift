import Foundation
import Testing
import TestSupport

/// Every client refuses an address outside PROVISION_ALLOWED_NETWORKS before sending anything. The
/// targets here are loopback addresses outside a narrower allowed range, so even a regression could
/// not put a packet on a real network.
@Suite struct NetworkPolicyCLITests {
    let env = ["PROVISION_ALLOWED_NETWORKS": "127.254.0.0/16", "TEST_PVE_SECRET": "unused-secret"]

    @Test func probeRefusesAnAddressOutsideTheAllowedNetworks() async throws {
        let result = try await CLI.run(["probe", "127.0.0.200", "--json"], environment: env)
        #expect(result.status != 0)
        #expect(result.stdout.contains("not-allowed"), "\(result.stdout)")
    }

    @Test func everyMachineProviderRefusesBeforeConnecting() async throws {
        let dir = try CLI.project()
        try FileManager.default.copyItem(atPath: "\(repositoryRoot)/playbooks/machines-up.yaml", toPath: "\(dir)/playbooks/machines-up.yaml")
        let inventory = """
            apiVersion: provision/v1
            kind: Inventory
            cluster: {name: guard, talosVersion: v1.13.2, kubernetesVersion: v1.34.2, endpoint: "https://127.1.0.10:6443",
                      vip: 127.1.0.10, nodeCIDR: 127.1.0.0/24, gateway: 127.1.0.1, podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/12}
            secrets: {encryption: plaintext}
            providers:
              pve: {kind: proxmox, endpoint: "https://127.0.0.201:8006", node: pve1, tokenID: "root@pam!t", tokenSecret: env:TEST_PVE_SECRET,
                    fingerprint: "\((0..<32).map { _ in "AB" }.joined(separator: ":"))", vmIDRange: 9000-9099}
              unraid: {kind: libvirt, uri: "qemu+tcp://127.0.0.202/system"}
              metal: {kind: metal, broadcast: 127.0.0.203, port: 40009, bootTimeout: 5s}
            images:
              vm: {schematic: ../images/vm.yaml, platform: nocloud}
            nodes:
              - {name: cp1, role: controlplane, image: vm, address: 127.1.0.11, machine: {provider: pve, mac: "bc:24:11:00:00:11"}, install: {disk: /dev/sda}}
              - {name: cp2, role: controlplane, image: vm, address: 127.1.0.12, machine: {provider: unraid, mac: "52:54:00:00:00:12"}, install: {disk: /dev/vda}}
              - {name: cp3, role: controlplane, image: vm, address: 127.1.0.13, machine: {provider: metal, mac: "a4:83:e7:00:00:13", link: enp3s0f0}, install: {disk: /dev/sda}}
            """
        try inventory.write(toFile: "\(dir)/inventories/guard.yaml", atomically: true, encoding: .utf8)
        let result = try await CLI.run(["machines", "up", "\(dir)/inventories/guard.yaml", "--state-dir", temporaryDirectory(), "--json"],
                                       cwd: dir, environment: env)
        #expect(result.status != 0)
        // The preflight reaches for both hypervisors first, and both refuse before a packet leaves.
        let failed = CLI.events(result.stdout.split(separator: "\n").map(String.init), kind: "step.failed")
        let preflight = failed.first { $0["step"] as? String == "machine-preflight" }.map { "\($0)" } ?? ""
        for (address, purpose) in [("127.0.0.201", "Proxmox API"), ("127.0.0.202", "libvirt")] {
            #expect(preflight.contains("refusing to contact \(address)") && preflight.contains(purpose), "\(preflight)")
        }
        // Metal has nothing to preflight: its machine step sends the Wake-on-LAN packet, refused too.
        let metal = try await CLI.run(["machines", "up", "\(dir)/inventories/guard.yaml", "--node", "cp3", "--state-dir", temporaryDirectory(), "--json"],
                                      cwd: dir, environment: env)
        #expect(metal.status != 0)
        let woken = CLI.events(metal.stdout.split(separator: "\n").map(String.init), kind: "step.failed").first { $0["step"] as? String == "machine@cp3" }
        let message = woken.map { "\($0)" } ?? ""
        #expect(message.contains("refusing to contact 127.0.0.203") && message.contains("Wake-on-LAN"), "\(message)")
    }
}
