import Foundation
import ProvisionCore

/// Inventory nodes as Proxmox VMs, found by name, created from the inventory's settings with an id
/// from the provider's range and booted from media PVE downloads itself, stopped with ACPI then a
/// hard stop, deleted with purge. The address comes from the guest agent when the image has one.
public struct ProxmoxMachineProvider: MachineProvider {
    /// The boot media for a node (from its image's schematic and Talos version); nil for none.
    public typealias MediaResolver = @Sendable (NodeSpec, _ isoStorage: String) throws -> ProxmoxBootMedia?

    let provider: ProviderSpec
    let client: ProxmoxClient
    let media: MediaResolver
    /// One download per file at a time, however many VMs need it.
    let downloads = SingleFlight<Bool>()
    /// Creates (with their import and disk resize) at once on this host (`maxParallel`, default 4).
    let creates: AsyncSemaphore
    /// The VM ids this provider is creating: their configs say only `lock: create` meanwhile.
    let creating = CreatesInFlight()

    public init(provider: ProviderSpec, credentials: ProxmoxCredentials, media: @escaping MediaResolver) throws {
        guard let endpoint = provider.endpoint.flatMap({ URL(string: $0.value) }) ?? provider.setting("endpoint").flatMap(URL.init(string:)),
              let host = endpoint.host else {
            throw StepError.permanent("provider \(provider.name.value) has no usable endpoint")
        }
        self.provider = provider
        self.media = media
        creates = AsyncSemaphore(provider.setting("maxParallel").flatMap { Int($0) } ?? 4)
        client = ProxmoxClient(host: host, port: endpoint.port ?? 8006, fingerprint: provider.setting("fingerprint") ?? "",
                               credentials: credentials, node: provider.setting("node") ?? "pve1")
    }

    var idRange: ClosedRange<Int> {
        let parts = (provider.setting("vmIDRange") ?? "100-999").split(separator: "-").compactMap { Int($0) }
        return parts.count == 2 && parts[0] <= parts[1] ? parts[0]...parts[1] : 100...999
    }

    public func observe(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        guard let vm = try await client.vm(named: node.name.value) else { return MachineState(power: .absent) }
        var address = node.address.value
        if vm.status == "running", let mac = node.machine.mac?.value.description,
           let reported = try await client.agentAddress(vm.vmid, mac: mac) {
            address = reported
        }
        return MachineState(power: vm.status == "running" ? .running : .stopped, id: "\(vm.vmid)", address: address,
                            tags: Dictionary(uniqueKeysWithValues: vm.tags.map { ($0, "") }), shape: Self.shape(try await client.config(vm.vmid)))
    }

    /// cores, memory (MiB), the scsi0 size and the NICs' MACs from the VM's config.
    static func shape(_ config: [String: String]) -> MachineShape {
        var disk: Int64?
        if let size = config["scsi0"]?.split(separator: ",").first(where: { $0.hasPrefix("size=") })?.dropFirst(5) {
            let number = Int64(size.dropLast()) ?? 0
            disk = size.hasSuffix("G") ? number << 30 : size.hasSuffix("M") ? number << 20 : size.hasSuffix("T") ? number << 40 : nil
        }
        let macs = config.filter { $0.key.hasPrefix("net") }.sorted { $0.key < $1.key }.compactMap { entry in
            entry.value.split(separator: ",").first?.split(separator: "=").last.map(String.init)
        }
        return MachineShape(cpus: config["cores"].flatMap { Int($0) }, memoryBytes: config["memory"].flatMap { Int64($0) }.map { $0 << 20 },
                            diskBytes: disk, macs: macs)
    }

    /// VMs tagged `talos` and the cluster's name, as `ensureRunning` tags them.
    public func machines(ownedBy cluster: String) async throws -> [String] {
        try await client.vms().filter { $0.tags.contains("talos") && $0.tags.contains(cluster) }.map(\.name)
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
        if try await client.vm(named: node.name.value) == nil {
            spec.media = try media(node, provider.setting("isoStorage") ?? "local")
            if let media = spec.media { _ = try await downloads.run(media.volumeID) { try await client.ensureMedia(media) } }
        }
        // Only the create (PVE's import or allocation, then the resize) holds a slot; the start does not.
        let (vmid, _) = try await creates.withSlot { try await client.ensureVM(spec, idRange: idRange, creating: creating) }
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
