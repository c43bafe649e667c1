import Foundation
import ProvisionCore

/// What a Talos VM boots from on Proxmox: the factory's ISO on a CD-ROM (metal platform), or the
/// nocloud disk image imported into the VM's disk. Both are fetched by PVE itself with `download-url`,
/// which API tokens may call (unlike `import-from` with a host path, which needs root@pam).
public struct ProxmoxBootMedia: Sendable, Equatable {
    public enum Kind: String, Sendable { case iso, `import` }

    public var kind: Kind
    /// Where PVE downloads it from (Image Factory, uncompressed: import refuses compressed files).
    public var url: String
    /// The file name on the storage; unique per schematic and version so a new image never reuses an old file.
    public var filename: String
    /// File-based storage with the `iso` or `import` content type.
    public var storage: String
    /// The schematic has the QEMU guest agent, so the VM gets `agent=1` and reports its address.
    public var agent: Bool

    public init(kind: Kind, url: String, filename: String, storage: String, agent: Bool) {
        self.kind = kind
        self.url = url
        self.filename = filename
        self.storage = storage
        self.agent = agent
    }

    public var volumeID: String { "\(storage):\(kind.rawValue)/\(filename)" }
}

extension ProxmoxClient {
    /// The volume ids a storage holds for one content type.
    public func volumes(storage: String, content: String) async throws -> Set<String> {
        let list = try await call(.GET, "/nodes/\(node)/storage/\(storage)/content", [("content", content)]) as? [[String: Any]] ?? []
        return Set(list.compactMap { $0["volid"] as? String })
    }

    /// Downloads the media unless the storage already has it. Returns whether it downloaded.
    @discardableResult
    public func ensureMedia(_ media: ProxmoxBootMedia) async throws -> Bool {
        if try await volumes(storage: media.storage, content: media.kind.rawValue).contains(media.volumeID) { return false }
        do {
            try await task(.POST, "/nodes/\(node)/storage/\(media.storage)/download-url",
                           [("url", media.url), ("content", media.kind.rawValue), ("filename", media.filename)])
        } catch let error as ProxmoxError where error.message.contains("not configured for content-type") {
            throw ProxmoxError(status: error.status, message: "storage \(media.storage) does not hold '\(media.kind.rawValue)' files; enable that content type "
                               + "(Datacenter > Storage > \(media.storage) > Content) or set the provider's isoStorage to one that does",
                               parameters: [:], operation: "download \(media.filename)")
        }
        return true
    }

    /// PVE's release (`/version`): what the preflight judges features by.
    public struct Version: Sendable, Equatable {
        public var text: String
        public var major: Int
        public var minor: Int

        /// Directory storages take qcow2/raw files into `import` content from PVE 8.4 on.
        public var takesDiskImageImports: Bool { (major, minor) >= (8, 4) }
    }

    public func version() async throws -> Version {
        let reply = try await call(.GET, "/version") as? [String: Any] ?? [:]
        let text = reply["version"] as? String ?? "unknown"
        let parts = text.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
        return Version(text: text, major: parts.first ?? 0, minor: parts.count > 1 ? parts[1] : 0)
    }

    /// What the signed-in token or user holds (GET /access/permissions): privileges by ACL path.
    public struct Permissions: Sendable {
        public var byPath: [String: Set<String>]

        /// Held at `path` or at a path above it (PVE's ACLs propagate down by default).
        public func holds(_ privilege: String, at path: String) -> Bool {
            byPath.contains { entry, privileges in
                privileges.contains(privilege) && (entry == "/" || entry == path || path.hasPrefix(entry + "/"))
            }
        }
    }

    public func permissions() async throws -> Permissions {
        let reply = try await call(.GET, "/access/permissions") as? [String: Any] ?? [:]
        var byPath: [String: Set<String>] = [:]
        for (path, privileges) in reply {
            byPath[path] = Set((privileges as? [String: Any])?.compactMap { ($0.value as? Int) == 1 || ($0.value as? Bool) == true ? $0.key : nil } ?? [])
        }
        return Permissions(byPath: byPath)
    }

    /// The guest agent's view of the NIC with `mac`: its first global IPv4 address. Nil while the
    /// agent is not running (booting, or no agent in the image): callers fall back to the inventory.
    public func agentAddress(_ vmid: Int, mac: String) async throws -> IPv4Address? {
        let reply: Any?
        do {
            reply = try await call(.GET, "/nodes/\(node)/qemu/\(vmid)/agent/network-get-interfaces")
        } catch let error as ProxmoxError where error.message.contains("agent is not running") || error.message.contains("got timeout") {
            return nil
        } catch let error as ProxmoxError where error.status == 403 {
            // The token may not ask the agent (VM.GuestAgent.Audit on PVE 9, VM.Monitor on 8:
            // qemu-server API2/Qemu/Agent.pm): the address is informational, the inventory's stands.
            return nil
        }
        let interfaces = (reply as? [String: Any])?["result"] as? [[String: Any]] ?? []
        for interface in interfaces where (interface["hardware-address"] as? String)?.lowercased() == mac.lowercased() {
            for entry in interface["ip-addresses"] as? [[String: Any]] ?? [] where entry["ip-address-type"] as? String == "ipv4" {
                guard let address = (entry["ip-address"] as? String).flatMap(IPv4Address.init) else { continue }
                if !address.isLinkLocal { return address }
            }
        }
        return nil
    }
}
