import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// A machine the cluster knows and the inventory does not: an etcd member, a Kubernetes Node, or a
/// VM a provider holds with provision's mark for this cluster. `up` never touches one; `plan` and
/// `status` show it; `provision remove` retires it.
public struct Orphan: Sendable, Equatable {
    public var name: String
    public var address: String?
    public var controlPlane: Bool
    public var etcdMemberID: UInt64?
    public var kubernetesNode: Bool
    /// The inventory provider holding a VM of that name, if one does.
    public var provider: String?

    /// Where it was seen, for people.
    public var seenIn: [String] {
        [etcdMemberID.map { _ in "etcd" }, kubernetesNode ? "Kubernetes" : nil, provider.map { "provider \($0)" }].compactMap { $0 }
    }
}

/// Finds orphans, reading etcd (through any control plane that answers), the Kubernetes Nodes and
/// each provider's machines. GPU workers (labelled for a pool) are the GPU commands' business.
public struct OrphanFinder: Sendable {
    let context: StepContext

    public init(context: StepContext) { self.context = context }

    public func find() async -> (orphans: [Orphan], notes: [String]) {
        let inventory = context.inventory
        let known = Set(inventory.nodes.map(\.hostname)).union(inventory.nodes.map(\.name.value)).union(inventory.nodes.compactMap { $0.machine.id?.value })
        var found: [String: Orphan] = [:]
        var notes: [String] = []
        func record(_ name: String, _ update: (inout Orphan) -> Void) {
            var orphan = found[name] ?? Orphan(name: name, controlPlane: false, kubernetesNode: false)
            update(&orphan)
            found[name] = orphan
        }
        let access = TalosAccess.from(context)
        var membersRead = false
        for cp in inventory.controlPlanes.map(\.name.value) where !membersRead {
            guard let members = try? await access.client(cp, .admin, timeout: .seconds(3)).etcdMembers() else { continue }
            membersRead = true
            for member in members where !member.hostname.isEmpty && !known.contains(member.hostname) {
                record(member.hostname) { orphan in
                    orphan.controlPlane = true
                    orphan.etcdMemberID = member.id
                    orphan.address = orphan.address ?? member.peerUrls.first.flatMap { URL(string: $0)?.host }
                }
            }
        }
        if let kube = try? KubeAccess.from(context).kube() {
            if let nodes = try? await kube.list("v1", "Node") {
                for node in nodes where !known.contains(node.name) && node[path: "metadata.labels"]?[MachineConfigRenderer.gpuPoolLabel] == nil {
                    record(node.name) { orphan in
                        orphan.kubernetesNode = true
                        orphan.address = orphan.address ?? node[path: "status.addresses"]?.array?.first { $0["type"] == "InternalIP" }?["address"]?.string
                        if node[path: "metadata.labels"]?["node-role.kubernetes.io/control-plane"] != nil { orphan.controlPlane = true }
                    }
                }
            } else {
                notes.append("the Kubernetes API did not answer: orphans there are not known")
            }
        }
        let providers = MachineProviders.from(context)
        for provider in inventory.providers where provider.kind.value == .libvirt || provider.kind.value == .proxmox {
            guard let sample = inventory.nodes.first(where: { $0.machine.provider.value == provider.name.value }) else { continue }
            do {
                for name in try await providers.provider(for: sample, context: context).machines(ownedBy: inventory.cluster.name.value) where !known.contains(name) {
                    record(name) { $0.provider = provider.name.value }
                }
            } catch {
                notes.append("provider \(provider.name.value) did not list its machines: \(error)")
            }
        }
        return (found.values.sorted { $0.name < $1.name }, notes)
    }
}

/// `cluster.orphans`: says which machines the cluster knows and the inventory does not. It changes
/// nothing and is always satisfied (an orphan is never `up`'s to touch); a plan lists them.
public struct ClusterOrphans: StepKind {
    public let info = StepKindInfo(name: "cluster.orphans", summary: "report nodes in etcd, Kubernetes or a provider that the inventory does not list",
                                   estimate: .seconds(2), scope: .cluster, mutates: false, defaultTimeout: .seconds(120))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let (orphans, _) = await OrphanFinder(context: context).find()
        for orphan in orphans {
            let reason = "in \(orphan.seenIn.joined(separator: ", ")) but not in the inventory; `up` leaves it alone; `provision remove \(context.inventory.name)/\(orphan.name)` retires it"
            context.plan(PlannedChange(node: orphan.name, resource: "node", action: "orphan", reason: reason), step: step)
            if !context.dryRun { context.log("\(orphan.name): \(reason)", level: .warning, step: step) }
        }
        return .satisfied(["orphans": orphans.map(\.name).joined(separator: ",")])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard case let .satisfied(outputs) = try await observe(step, context: context) else { return [:] }
        return outputs
    }
}
