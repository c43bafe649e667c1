import Foundation
import ProvisionCore

/// What a Proxmox host must offer before the first VM is created, checked in one pass for every
/// node still to be made: each disk storage exists, is active, holds `images` and has room for all
/// the disks put on it; the boot media's storage holds `import` (the nocloud disk image) or `iso`;
/// the version takes a disk image into `import` (PVE 8.4); the API token may download the media.
/// One message per problem naming every node it stops, so a missing content type fails once in a
/// second, not five times after four retries each.
extension ProxmoxMachineProvider {
    public func preflight(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] {
        let existing = Set(try await client.vms().map(\.name))
        let missing = nodes.filter { !existing.contains($0.name.value) }
        guard !missing.isEmpty else { return [] }
        let listed = try await client.call(.GET, "/nodes/\(client.node)/storage") as? [[String: Any]] ?? []
        var storages: [String: (content: Set<String>, active: Bool, avail: Int64)] = [:]
        for item in listed {
            guard let name = item["storage"] as? String else { continue }
            let content = Set((item["content"] as? String ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let active = (item["active"] as? Int ?? (item["active"] as? Bool == true ? 1 : 0)) == 1
            let avail = (item["avail"] as? Int64) ?? (item["avail"] as? Int).map(Int64.init) ?? (item["avail"] as? Double).map { Int64($0) } ?? 0
            storages[name] = (content, active, avail)
        }
        let known = storages.keys.sorted().joined(separator: ", ")
        var needs: [String: (content: String, nodes: [String], bytes: Int64)] = [:]
        func need(_ storage: String, _ content: String, _ node: String, bytes: Int64) {
            let key = "\(storage)|\(content)"
            var entry = needs[key] ?? (content, [], 0)
            entry.nodes.append(node)
            entry.bytes += bytes
            needs[key] = entry
        }
        let isoStorage = provider.setting("isoStorage") ?? "local"
        // Storages a Talos image is still to be downloaded to (the token's privileges are checked there).
        var downloads: Set<String> = []
        for node in missing {
            let name = node.name.value
            let storage = node.machine.storage?.value ?? provider.setting("storage") ?? "local-lvm"
            need(storage, "images", name, bytes: node.machine.diskSize?.value ?? 32 << 30)
            if let media = try media(node, isoStorage) {
                need(media.storage, media.kind.rawValue, name, bytes: 0)
                if try await !client.volumes(storage: media.storage, content: media.kind.rawValue).contains(media.volumeID) { downloads.insert(media.storage) }
            }
        }
        var problems: [String] = []
        let version = try await client.version()
        let importers = needs.filter { $0.value.content == "import" }.flatMap(\.value.nodes).sorted()
        if !importers.isEmpty, !version.takesDiskImageImports {
            // Directory storages take qcow2/raw files into `import` content only since
            // libpve-storage-perl 8.3.6 (PVE 8.4; proxmox/pve-storage 76f695f): on 8.3 only .ova,
            // and 8.2 has no `import` on directory storages at all.
            problems.append("Proxmox VE \(version.text) on \(client.node) cannot import a Talos disk image (that came with PVE 8.4), and \(importers.joined(separator: ", ")) "
                            + "use\(importers.count == 1 ? "s" : "") an image class on the nocloud platform. Upgrade Proxmox VE to 8.4 or later, "
                            + "or give \(importers.count == 1 ? "it" : "them") an image class on the metal platform (the VM then boots the Talos ISO)")
            for key in needs.keys where needs[key]?.content == "import" { needs[key] = nil }
        }
        problems += try await missingPrivileges(downloads.sorted())
        for key in needs.keys.sorted() {
            let storage = String(key.split(separator: "|")[0])
            guard let (content, nodes, bytes) = needs[key] else { continue }
            let who = nodes.joined(separator: ", ")
            let purpose = content == "images" ? "the disks of \(who)" : content == "import" ? "the Talos disk image \(who) import" : "the Talos ISO \(who) boot from"
            guard let found = storages[storage] else {
                problems.append("storage \(storage) does not exist on \(client.node) (needed for \(purpose)); storages there: \(known.isEmpty ? "none" : known). Fix the node's machine.storage or the provider's \(content == "images" ? "storage" : "isoStorage")")
                continue
            }
            if !found.active {
                problems.append("storage \(storage) on \(client.node) is not active (needed for \(purpose)); bring it online in PVE")
                continue
            }
            if !found.content.contains(content) {
                problems.append("storage \(storage) does not hold '\(content)' files (needed for \(purpose)); enable that content type (Datacenter > Storage > \(storage) > Content) or set the provider's \(content == "images" ? "storage" : "isoStorage") to one that does")
                continue
            }
            if content == "images", bytes > found.avail {
                problems.append("storage \(storage) has \(SizeText.format(Int(found.avail))) free and the disks of \(who) need \(SizeText.format(Int(bytes))); free space there or put some on another storage (machine.storage)")
            }
        }
        return problems
    }
}

extension ProxmoxMachineProvider {
    /// What the API token lacks to download boot media into `storages` (GET /access/permissions):
    /// `download-url` needs Datastore.AllocateTemplate on the storage, and Sys.AccessNetwork on the
    /// node or Sys.Audit with Sys.Modify on / (pve-storage PVE/API2/Storage/Status.pm download_url).
    func missingPrivileges(_ storages: [String]) async throws -> [String] {
        guard !storages.isEmpty else { return [] }
        let held = try await client.permissions()
        var problems: [String] = []
        for storage in storages where !held.holds("Datastore.AllocateTemplate", at: "/storage/\(storage)") {
            problems.append("the API token lacks Datastore.AllocateTemplate on /storage/\(storage), which downloading the Talos image there needs; "
                            + "grant it (Datacenter > Permissions > Add > API Token Permission, path /storage/\(storage), a role holding it such as PVEDatastoreAdmin)")
        }
        let network = held.holds("Sys.AccessNetwork", at: "/nodes/\(client.node)") || (held.holds("Sys.Audit", at: "/") && held.holds("Sys.Modify", at: "/"))
        if !network {
            problems.append("the API token lacks Sys.AccessNetwork on /nodes/\(client.node) (or Sys.Audit and Sys.Modify on /), which downloading the Talos image needs; "
                            + "grant it on /nodes/\(client.node)")
        }
        return problems
    }
}
