import Foundation
import ProvisionCore
import TalosKit

/// What each node runs against what the inventory wants, and the path between, read live: what
/// `provision upgrade` shows and checks before it starts.
public struct UpgradeSurvey: Sendable {
    public struct Node: Sendable {
        public var node: String
        public var controlPlane: Bool
        public var running: String
        public var wanted: String
        public var path: [String]
        public var schematicChange: Bool
        public var legacy: Bool
    }

    public var nodes: [Node] = []
    public var unreachable: [String] = []
    /// Targets refused: unknown releases, downgrades, Kubernetes windows.
    public var problems: [String] = []

    public init() {}

    public static func read(_ context: StepContext, only: String?, allowDowngrade: Bool) async -> UpgradeSurvey {
        var survey = UpgradeSurvey()
        let access = TalosAccess.from(context)
        let ordered = context.inventory.controlPlanes + context.inventory.nodes.filter { $0.role.value == .worker }
        for spec in ordered where only == nil || spec.name.value == only {
            let name = spec.name.value
            guard let client = try? await access.client(name, .admin, timeout: .seconds(5)),
                  let now = try? await TalosUpgrade.running(client), let want = try? await TalosUpgrade.desired(name, context) else {
                survey.unreachable.append(name)
                continue
            }
            guard now != want else { continue }
            do {
                let path = try TalosReleases.path(from: now.version, to: want.version, kubernetes: KubernetesSurvey.running(context),
                                                  allowDowngrade: allowDowngrade)
                survey.nodes.append(Node(node: name, controlPlane: spec.role.value == .controlplane, running: now.version, wanted: want.version,
                                         path: path.isEmpty ? [want.version] : path, schematicChange: now.schematic != want.schematic,
                                         legacy: !(TalosReleases.minor(of: now.version)?.lifecycleAPI ?? true)))
            } catch {
                survey.problems.append("\(name): \(error)")
            }
        }
        return survey
    }
}
