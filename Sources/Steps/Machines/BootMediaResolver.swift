import Providers
import ProvisionCore
import TalosKit

/// A node's boot media from its image class: what its hypervisor makes its disk from or puts on its
/// CD-ROM. nocloud classes boot the factory's disk image, anything else the factory ISO. Names
/// carry the Talos version and the schematic id, so a changed schematic downloads a new file and
/// never reuses one.
enum BootMediaResolver {
    /// The node's image class resolved: its schematic, Talos version and platform.
    struct Image {
        var schematic: Schematic
        var version: String
        var platform: String

        var stem: String { "talos-\(version)-\(schematic.id.prefix(12))" }
        var agent: Bool { schematic.officialExtensions.contains("siderolabs/qemu-guest-agent") }
        func urls(_ downloadBase: String? = nil) -> ImageURLs {
            ImageURLs(schematicID: schematic.id, version: version, platform: platform, downloadBase: downloadBase)
        }
    }

    static func image(for node: NodeSpec, in inventory: Inventory) throws -> Image {
        guard let image = inventory.image(named: node.image.value) else {
            throw StepError.permanent("\(node.name.value): image \(node.image.value) is not in the inventory's images")
        }
        let path = Inventory.resolve(image.schematic.value, inventoryFile: inventory.file)
        let schematic: Schematic
        do { schematic = try SchematicParser.load(path: path) } catch {
            throw StepError.permanent("\(node.name.value): schematic \(path): \(error.description)")
        }
        return Image(schematic: schematic, version: node.talosVersion?.value ?? inventory.cluster.talosVersion.value, platform: image.platform.value)
    }

    /// Proxmox: PVE downloads the uncompressed qcow2 into `import` content, or the ISO into `iso`.
    static func proxmox(for node: NodeSpec, in inventory: Inventory, storage: String) throws -> ProxmoxBootMedia? {
        let image = try image(for: node, in: inventory)
        let urls = image.urls()
        if image.platform == "nocloud" {
            return ProxmoxBootMedia(kind: .import, url: urls.importableDisk, filename: "\(image.stem)-nocloud-amd64.qcow2", storage: storage, agent: image.agent)
        }
        return ProxmoxBootMedia(kind: .iso, url: urls.iso, filename: "\(image.stem)-metal-amd64.iso", storage: storage, agent: image.agent)
    }

    /// libvirt: provision downloads from the provider's `imageFactory` and uploads into the pool:
    /// the raw disk image (gzip'd on the wire), or the ISO.
    static func libvirt(for node: NodeSpec, in inventory: Inventory, factory: String?) throws -> LibvirtBootMedia? {
        let image = try image(for: node, in: inventory)
        let urls = image.urls(factory)
        if image.platform == "nocloud" {
            return LibvirtBootMedia(kind: .disk, url: urls.gzippedDisk, volume: "\(image.stem)-nocloud-amd64.raw", agent: image.agent)
        }
        return LibvirtBootMedia(kind: .iso, url: urls.iso, volume: "\(image.stem)-metal-amd64.iso", agent: image.agent)
    }
}
