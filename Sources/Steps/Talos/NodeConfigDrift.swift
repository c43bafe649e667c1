import Foundation
import ProvisionCore
import TalosKit

/// A configured node's machine configs as Talos holds them (COSI `MachineConfigs` `v1alpha1`, the
/// active one, and `persistent`, what is on disk), against the config the inventory renders now.
struct NodeConfigDrift: Sendable {
    let desired: ConfigDocuments
    let active: ConfigDocuments?
    let persistent: ConfigDocuments?
    /// The rendered text, as it is sent.
    let desiredText: String

    /// Active and on-disk configs both mean what the inventory says.
    var inSync: Bool { same(active) && same(persistent ?? active) }
    /// The disk already holds the desired config; it waits for a reboot to become active.
    var stagedForReboot: Bool { !same(active) && same(persistent) }
    /// The disk holds a config the active one does not: a reboot is owed, whatever it was for.
    var rebootOwed: Bool { (persistent?.canonical).map { $0 != active?.canonical } ?? false }

    func same(_ other: ConfigDocuments?) -> Bool { other?.canonical == desired.canonical }

    /// What would change, as a unified diff of the active config (secrets redacted).
    var diff: String? { desired.diff(from: active) }

    static func read(_ node: String, context: StepContext) async throws -> NodeConfigDrift {
        let access = TalosAccess.from(context)
        let text = try await access.config(for: node)
        let client = try await access.client(node, .admin, timeout: .seconds(10))
        func parse(_ yaml: String?) throws -> ConfigDocuments? {
            guard let yaml else { return nil }
            do { return try ConfigDocuments(yaml: yaml, file: "\(node)'s config") } catch {
                throw StepError.permanent("\(node)'s machine config as Talos returned it cannot be read: \(error)")
            }
        }
        let active = try parse(try await client.machineConfig(.active))
        var desired = try ConfigDocuments(yaml: text, file: "rendered config of \(node)")
        var desiredText = text
        // The installer image names the Talos version: changing it is an upgrade's business
        // (`provision upgrade`), never a config change `up` makes, so the node's own one is kept.
        if let image = active?.installImage, desired.installImage != image {
            desired.installImage = image
            desiredText = desired.yaml
        }
        return NodeConfigDrift(desired: desired, active: active, persistent: try parse(try await client.machineConfig(.persistent)), desiredText: desiredText)
    }
}
