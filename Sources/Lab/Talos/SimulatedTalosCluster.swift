import Foundation
import ProvisionCore
import TalosKit

/// The simulated Talos machines of one lab: a node per spec, sharing one etcd.
public final class SimulatedTalosCluster: Sendable {
    public let record = LabRecord()
    public let etcd: SimulatedEtcd
    public let trustd = SimulatedTrustd()
    public let directory: SimulatedDirectory
    public let nodes: [SimulatedTalosNode]

    public init(specs: [SimulatedNodeSpec]) {
        etcd = SimulatedEtcd(record: record)
        directory = SimulatedDirectory(record: record)
        let etcd = self.etcd, trustd = self.trustd, directory = self.directory
        nodes = specs.map { SimulatedTalosNode(spec: $0, etcd: etcd, trustd: trustd, directory: directory) }
    }

    /// One node per inventory node, on the inventory's (loopback) addresses, with the inventory's
    /// time scale and faults. Metal images boot from ISO and install; the others are preinstalled.
    /// `kept`: machines a saved lab holds that the inventory no longer lists; they go on existing.
    public convenience init(inventory: Inventory) { self.init(inventory: inventory, kept: []) }

    convenience init(inventory: Inventory, kept: [TwinSnapshot.NodeState]) {
        let scale = inventory.lab?.timeScale.value ?? 1
        let faults = inventory.lab?.faults ?? []
        let schematics = Dictionary(uniqueKeysWithValues: inventory.images.map { image in
            (image.name.value, try? SchematicParser.load(path: Inventory.resolve(image.schematic.value, inventoryFile: inventory.file)).id)
        })
        let leases = LabRouter.leases(inventory)
        var specs = inventory.nodes.map { node -> SimulatedNodeSpec in
            var spec = SimulatedNodeSpec(name: node.name.value, address: node.address.value.description)
            // A machine runs what was installed on it (saved by the lab), not what the inventory now says.
            spec.talosVersion = kept.first { $0.name == node.name.value }?.talosVersion ?? node.talosVersion?.value ?? inventory.cluster.talosVersion.value
            spec.platform = inventory.image(named: node.image.value)?.platform.value ?? "metal"
            spec.schematic = kept.first { $0.name == node.name.value }?.schematic ?? schematics[node.image.value] ?? nil
            spec.timeScale = scale
            if let provider = inventory.provider(named: node.machine.provider.value), provider.kind.value == .libvirt {
                spec.hypervisor = provider.name.value
                spec.domain = node.machine.id?.value
            }
            // Hardware keeps its NIC: once the lab has a machine, its MAC is the saved one, whatever the
            // inventory now says (an orphan's stand-in entry has no MAC at all).
            spec.mac = kept.first { $0.name == node.name.value }?.mac ?? node.machine.mac?.value.description
            spec.leaseAddress = leases[node.name.value]
            spec.wakesFromPowerOff = inventory.lab?.wakeFromPowerOff.contains { $0.value == node.image.value } ?? false
            if let build = inventory.lab?.delays.installerBuild { spec.installerBuildSeconds = Double(build.components.seconds) }
            spec.faults = Set(faults.filter { $0.node.value == node.name.value }.compactMap { SimulatedFault(rawValue: $0.kind.value) })
            if node.image.value.contains("mini") {
                spec.disks = [SimulatedDisk(path: "/dev/nvme0n1", size: 256 << 30, model: "APPLE SSD AP0256M", transport: "nvme"),
                              SimulatedDisk(path: "/dev/sda", size: 16 << 30, model: "USB DISK 3.0", transport: "usb")]
            }
            return spec
        }
        let listed = Set(specs.map(\.name))
        for state in kept where !listed.contains(state.name) {
            guard let address = state.address else { continue }
            var spec = SimulatedNodeSpec(name: state.name, address: address)
            spec.talosVersion = state.talosVersion ?? inventory.cluster.talosVersion.value
            spec.platform = state.platform ?? "metal"
            spec.timeScale = scale
            spec.hypervisor = state.hypervisor
            spec.domain = state.domain
            spec.schematic = state.schematic
            spec.mac = state.mac
            specs.append(spec)
        }
        self.init(specs: specs)
    }

    public func node(_ name: String) -> SimulatedTalosNode? { nodes.first { $0.spec.name == name } }

    public func powerOnAll() async {
        for node in nodes { await node.powerOn() }
    }

    public func shutdown() async {
        for node in nodes { await node.powerOff() }
    }
}
