import Foundation
import ProvisionCore

/// What a Proxmox host must offer before the first VM is created, checked in one pass for every
/// node still to be made: each disk storage exists, is active, holds `images` and has room for all
/// the disks put on it; the boot media's storage holds `import` (the nocloud disk image) or `iso`.
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
        for node in missing {
            let name = node.name.value
            let storage = node.machine.storage?.value ?? provider.setting("storage") ?? "local-lvm"
            need(storage, "images", name, bytes: node.machine.diskSize?.value ?? 32 << 30)
            if let media = try media(node, isoStorage) { need(media.storage, media.kind.rawValue, name, bytes: 0) }
        }
        var problems: [String] = []
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
