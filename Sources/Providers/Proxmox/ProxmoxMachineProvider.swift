import Foundation
import ProvisionCore

/// Inventory nodes as Proxmox VMs, found by name, created from the inventory's settings with an id
/// from the provider's range, stopped with ACPI then a hard stop, deleted with purge.
public struct ProxmoxMachineProvider: MachineProvider {
    let provider: ProviderSpec
    let client: ProxmoxClient

    public init(provider: ProviderSpec, secret: String) throws {
        guard let endpoint = provider.endpoint.flatMap({ URL(string: $0.value) }) ?? provider.setting("endpoint").flatMap(URL.init(string:)),
              let host = endpoint.host else {
            throw StepError.permanent("provider \(provider.name.value) has no usable endpoint")
        }
        self.provider = provider
        client = ProxmoxClient(host: host, port: endpoint.port ?? 8006, fingerprint: provider.setting("fingerprint") ?? "",
                               tokenID: provider.setting("tokenID") ?? "root@pam!provision", secret: secret, node: provider.setting("node") ?? "pve1")
    }

    var idRange: ClosedRange<Int> {
        let parts = (provider.setting("vmIDRange") ?? "100-999").split(separator: "-").compactMap { Int($0) }
        return parts.count == 2 && parts[0] <= parts[1] ? parts[0]...parts[1] : 100...999
    }

    public func observe(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        guard let vm = try await client.vm(named: node.name.value) else { return MachineState(power: .absent) }
        return MachineState(power: vm.status == "running" ? .running : .stopped, id: "\(vm.vmid)", address: node.address.value,
                            tags: Dictionary(uniqueKeysWithValues: vm.tags.map { ($0, "") }))
    }

    public func ensureRunning(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        guard let mac = node.machine.mac?.value.description else {
            throw StepError.permanent("\(node.name.value) needs machine.mac for a Proxmox VM (its address is reserved by MAC)")
        }
        var spec = ProxmoxVMSpec(name: node.name.value, cores: node.machine.cpus?.value ?? 2, memoryMiB: Int((node.machine.memory?.value ?? 4 << 30) >> 20),
                                 storage: node.machine.storage?.value ?? provider.setting("storage") ?? "local-lvm",
                                 diskGiB: Int((node.machine.diskSize?.value ?? 32 << 30) >> 30), mac: mac,
                                 tags: ["talos", inventory.cluster.name.value, node.role.value.rawValue])
        spec.bridge = node.machine.bridge?.value ?? "vmbr0"
        spec.vlan = node.machine.vlan?.value
        let (vmid, _) = try await client.ensureVM(spec, idRange: idRange)
        try await client.start(vmid)
        return try await observe(node, in: inventory)
    }

    public func stop(_ node: NodeSpec, in inventory: Inventory) async throws {
        guard let vm = try await client.vm(named: node.name.value) else { return }
        try await client.stop(vm.vmid)
    }

    public func delete(_ node: NodeSpec, in inventory: Inventory) async throws {
        guard let vm = try await client.vm(named: node.name.value) else { return }
        try await client.stop(vm.vmid)
        try await client.delete(vm.vmid)
    }
}
