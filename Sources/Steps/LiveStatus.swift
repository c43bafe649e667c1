import Foundation
import KubeKit
import Providers
import ProvisionCore
import TalosKit

/// What `provision status` shows beyond the journal, read live and changing nothing: each node's
/// machine, Talos stage and version, etcd membership and Kubernetes readiness, and every GPU
/// instance with its expiry. A part that cannot be read says so instead of failing the whole.
public struct LiveStatus: Sendable {
    public struct Node: Sendable {
        public var name: String
        public var machine = "?"
        public var talos = "?"
        public var version: String?
        /// The Image Factory schematic it runs, when configured and a factory image.
        public var schematic: String?
        public var etcdMember: Bool?
        public var kubernetes = "?"
    }

    public struct Instance: Sendable {
        public var pool: String
        public var id: String
        public var state: String
        public var address: String?
        public var expiresAt: String?
    }

    public var nodes: [Node] = []
    public var instances: [Instance] = []
    /// Machines the cluster has and the inventory does not list.
    public var orphans: [Orphan] = []
    public var notes: [String] = []

    public static func read(_ context: StepContext) async -> LiveStatus {
        var status = LiveStatus()
        let inventory = context.inventory
        let talos = TalosAccess.from(context)
        let providers = MachineProviders.from(context)
        var members: Set<String>?
        var kubeNodes: [String: JSON]?
        // A host new to the cluster (its bundle from the shared bucket) asks Talos for the kubeconfig.
        if (try? KubeAccess.from(context).kube()) == nil, (try? await talos.bundle()) != nil { _ = try? await TalosKubeconfig.fetch(context) }
        if let kube = try? KubeAccess.from(context).kube() {
            kubeNodes = (try? await kube.list("v1", "Node")).map { Dictionary($0.map { ($0.name, $0) }, uniquingKeysWith: { $1 }) }
            if kubeNodes == nil { status.notes.append("the Kubernetes API at \(kube.config.server.absoluteString) does not answer") }
        } else {
            status.notes.append("no kubeconfig yet: Kubernetes columns are empty")
        }
        for spec in inventory.nodes {
            let name = spec.name.value
            var node = Node(name: name)
            if let machine = try? await providers.provider(for: spec, context: context).observe(spec, in: inventory) { node.machine = machine.power.rawValue }
            let probe = (try? await talos.probe(name))
            node.talos = probe.map { $0.stage ?? $0.mode.rawValue } ?? "?"
            node.version = probe?.version
            if probe?.mode == .configured { node.schematic = try? await talos.client(name, .admin, timeout: .seconds(3)).schematic() }
            if spec.role.value == .controlplane, members == nil, probe?.mode == .configured,
               let list = try? await talos.client(name, .admin, timeout: .seconds(3)).etcdMembers() {
                members = Set(list.map(\.hostname))
            }
            if let kubeNodes { node.kubernetes = kubeNodes[spec.hostname].map { $0.condition("Ready") == "True" ? "Ready" : "NotReady" } ?? "absent" }
            status.nodes.append(node)
        }
        for index in status.nodes.indices where inventory.nodes[index].role.value == .controlplane {
            status.nodes[index].etcdMember = members.map { $0.contains(inventory.nodes[index].hostname) }
        }
        let (orphans, notes) = await OrphanFinder(context: context).find()
        status.orphans = orphans
        status.notes += notes
        let pools = GPUPools(context: context)
        for pool in inventory.gpuPools {
            guard let client = try? await pools.client(pool), let found = try? await pools.live(pool, client) else {
                status.notes.append("pool \(pool.name.value): EC2 does not answer")
                continue
            }
            status.instances += found.map {
                Instance(pool: pool.name.value, id: $0.id, state: $0.state, address: $0.privateAddress, expiresAt: $0.tags["provision:expires-at"])
            }
        }
        return status
    }
}
