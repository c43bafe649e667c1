import Foundation
import GRPCCore
import SwiftProtobuf
import TalosKit

/// `storage.StorageService/Disks`: the node's disks, as the install-disk preflight reads them.
struct StorageHandler: Storage_StorageService.SimpleServiceProtocol {
    let node: SimulatedTalosNode

    func disks(request: Google_Protobuf_Empty, context: ServerContext) async throws -> Storage_DisksResponse {
        try await node.authorize(.read, "Disks", context)
        let installDisk = await node.config?.installDisk
        let disks = node.spec.disks.map { disk in
            Storage_Disk.with {
                $0.deviceName = disk.path
                $0.name = String(disk.path.split(separator: "/").last ?? "")
                $0.size = disk.size
                $0.model = disk.model
                $0.subsystem = disk.transport == "nvme" ? "/sys/class/nvme" : "/sys/class/block"
                $0.busPath = "/pci0000:00/\(disk.transport)"
                $0.type = disk.transport == "nvme" ? .nvme : (disk.rotational ? .hdd : .ssd)
                $0.systemDisk = installDisk == disk.path
            }
        }
        return .with { $0.messages = [.with { $0.disks = disks }] }
    }
}

/// `cosi.resource.State`: `MachineStatuses.runtime.talos.dev/machine` (the stage a waiter reads) and
/// `MachineConfigs.config.talos.dev` `v1alpha1` (the active config) and `persistent` (what is on
/// disk: ahead of the active one after STAGED). Configs hold secrets, so they need os:admin.
struct ResourceHandler: Cosi_Resource_State.SimpleServiceProtocol {
    let node: SimulatedTalosNode
    static let machineStatusType = "MachineStatuses.runtime.talos.dev"
    static let machineConfigType = "MachineConfigs.config.talos.dev"
    static let extensionStatusType = "ExtensionStatuses.runtime.talos.dev"
    /// What blkid found on each disk and partition (readable in maintenance, as `talosctl get discoveredvolumes --insecure`).
    static let discoveredVolumeType = "DiscoveredVolumes.block.talos.dev"
    /// The node's links with their MACs (`talosctl get links --insecure` in maintenance).
    static let linkStatusType = "LinkStatuses.net.talos.dev"

    func get(request: Cosi_Resource_GetRequest, context: ServerContext) async throws -> Cosi_Resource_GetResponse {
        if request.namespace == "config", request.type == Self.machineConfigType {
            try await node.authorize(.admin, "Get", context)
            guard let resource = await machineConfig(request.id) else {
                throw RPCError(code: .notFound, message: "resource \(request.type)/\(request.id) doesn't exist")
            }
            return .with { $0.resource = resource }
        }
        try await node.authorize(.read, "Get", context)
        if request.namespace == "controlplane" {
            guard let version = await node.staticPodResourceVersion(type: request.type, id: request.id) else {
                throw RPCError(code: .notFound, message: "resource \(request.type)/\(request.id) doesn't exist")
            }
            let spec = request.type == StaticPodVersions.configFilesType ? "ready: true\nversion: \"\(await node.configFilesVersion)\"\n" : "{}\n"
            var resource = Self.resource(namespace: "controlplane", type: request.type, id: request.id, yaml: spec)
            resource.metadata.version = version
            return .with { $0.resource = resource }
        }
        guard request.namespace == "runtime", request.type == Self.machineStatusType, request.id == "machine" else {
            throw RPCError(code: .notFound, message: "resource \(request.type)/\(request.id) doesn't exist")
        }
        let resource = await machineStatus()
        return .with { $0.resource = resource }
    }

    func list(request: Cosi_Resource_ListRequest, response: RPCWriter<Cosi_Resource_ListResponse>, context: ServerContext) async throws {
        if request.namespace == "config", request.type == Self.machineConfigType {
            try await node.authorize(.admin, "List", context)
            for id in ["persistent", "v1alpha1"] {
                if let resource = await machineConfig(id) { try await response.write(.with { $0.resource = resource }) }
            }
            return
        }
        try await node.authorize(.read, "List", context)
        if request.namespace == "runtime", request.type == Self.extensionStatusType {
            // Factory images list their schematic as an extension named `schematic`.
            if let schematic = await node.schematic {
                let yaml = "image: schematic\nmetadata:\n    name: schematic\n    version: \(schematic)\n    description: This extension holds the schematic ID of the image\n"
                try await response.write(.with { $0.resource = Self.resource(namespace: "runtime", type: Self.extensionStatusType, id: "0", yaml: yaml) })
            }
            return
        }
        if request.namespace == "network", request.type == Self.linkStatusType {
            // The loopback and the machine's one NIC, by its own MAC.
            let mac = node.spec.nicMAC
            for link in [NetworkLink(name: "lo", type: "loopback", hardwareAddr: "00:00:00:00:00:00", permanentAddr: ""),
                         NetworkLink(name: "enp1s0", type: "ether", hardwareAddr: mac, permanentAddr: mac)] {
                try await response.write(.with { $0.resource = Self.resource(namespace: "network", type: Self.linkStatusType, id: link.name, yaml: link.yaml) })
            }
            return
        }
        if request.namespace == "runtime", request.type == Self.discoveredVolumeType {
            for volume in await node.discoveredVolumes() {
                try await response.write(.with { $0.resource = Self.resource(namespace: "runtime", type: Self.discoveredVolumeType, id: String(volume.devPath.split(separator: "/").last ?? ""), yaml: volume.yaml) })
            }
            return
        }
        guard request.namespace == "runtime", request.type == Self.machineStatusType else { return }
        let resource = await machineStatus()
        try await response.write(.with { $0.resource = resource })
    }

    func machineStatus() async -> Cosi_Resource_Resource {
        let stage = await node.stage
        let status = MachineStatus(stage: stage, ready: stage == .running || stage == .maintenance)
        return Self.resource(namespace: "runtime", type: Self.machineStatusType, id: "machine", yaml: status.yaml)
    }

    func machineConfig(_ id: String) async -> Cosi_Resource_Resource? {
        let config: AppliedConfig?
        switch id {
        case "v1alpha1": config = await node.config
        case "persistent": config = await node.persistent
        default: return nil
        }
        guard let config else { return nil }
        return Self.resource(namespace: "config", type: Self.machineConfigType, id: id, yaml: config.text)
    }

    static func resource(namespace: String, type: String, id: String, yaml: String) -> Cosi_Resource_Resource {
        var resource = Cosi_Resource_Resource()
        resource.metadata.namespace = namespace
        resource.metadata.type = type
        resource.metadata.id = id
        resource.metadata.phase = "running"
        resource.spec.yamlSpec = yaml
        return resource
    }
}
