import Providers
import ProvisionCore
import TalosKit

/// A node's Proxmox boot media from its image class: nocloud images import the factory's
/// uncompressed qcow2 into the VM disk, anything else boots the factory ISO. File names carry the
/// schematic id and Talos version, so a changed schematic downloads a new file and never reuses one.
enum ProxmoxBootMediaResolver {
    static func media(for node: NodeSpec, in inventory: Inventory, storage: String) throws -> ProxmoxBootMedia? {
        guard let image = inventory.image(named: node.image.value) else {
            throw StepError.permanent("\(node.name.value): image \(node.image.value) is not in the inventory's images")
        }
        let path = Inventory.resolve(image.schematic.value, inventoryFile: inventory.file)
        let schematic: Schematic
        do { schematic = try SchematicParser.load(path: path) } catch {
            throw StepError.permanent("\(node.name.value): schematic \(path): \(error.description)")
        }
        let version = node.talosVersion?.value ?? inventory.cluster.talosVersion.value
        let urls = ImageURLs(schematicID: schematic.id, version: version, platform: image.platform.value)
        let agent = schematic.officialExtensions.contains("siderolabs/qemu-guest-agent")
        let stem = "talos-\(version)-\(schematic.id.prefix(12))"
        if image.platform.value == "nocloud" {
            return ProxmoxBootMedia(kind: .import, url: urls.importableDisk, filename: "\(stem)-nocloud-amd64.qcow2", storage: storage, agent: agent)
        }
        return ProxmoxBootMedia(kind: .iso, url: urls.iso, filename: "\(stem)-metal-amd64.iso", storage: storage, agent: agent)
    }
}
