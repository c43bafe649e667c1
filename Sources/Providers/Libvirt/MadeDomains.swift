import Foundation
import ProvisionCore
import Synchronization

/// The MACs of the VMs provision made on one libvirt host, kept in the state directory. Unraid's VM
/// form rebuilds a domain's metadata from its template alone when saved (unraid/webgui
/// `include/libvirt.php`), dropping provision's `<provision:node>` mark; a domain is still known as
/// provision's by the MAC it was made with, even renamed there.
public final class MadeDomains: Sendable {
    let path: String
    private let lock = Mutex(())

    /// `<state>/machines/libvirt-PROVIDER.json`.
    public init(stateDirectory: String, provider: String) {
        path = "\(stateDirectory)/machines/libvirt-\(provider).json"
    }

    /// Domain name (when made) -> MAC, lowercased.
    public func all() -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String] else { return [:] }
        return object
    }

    func record(_ name: String, mac: String) throws { try change { $0[name] = mac.lowercased() } }

    func forget(_ name: String) throws { try change { $0[name] = nil } }

    private func change(_ edit: (inout [String: String]) -> Void) throws {
        try lock.withLock { _ in
            var made = all()
            edit(&made)
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try PrivateFile.write(Array(try JSONSerialization.data(withJSONObject: made, options: [.sortedKeys])), to: path)
        }
    }
}
