import Foundation
import KubeKit
import Providers
import ProvisionCore
import TalosKit

/// What the GPU steps share: the pool a run is about, its EC2 client, and the tags that are the
/// only record of its instances (so `gpu sweep` and `gpu down` need no local state at all).
struct GPUPools: Sendable {
    let context: StepContext

    /// The pool named by the command's target, or the inventory's only pool.
    func pool(_ step: StepInstance) throws -> GPUPoolSpec {
        let name = step.node ?? context.target ?? context.inventory.gpuPools.first?.name.value ?? ""
        guard let pool = context.inventory.pool(named: name) else {
            throw StepError.permanent("inventory \(context.inventory.name) has no GPU pool \(name)")
        }
        return pool
    }

    func client(_ pool: GPUPoolSpec) async throws -> EC2Client {
        guard let provider = context.inventory.provider(named: pool.provider.value), provider.kind.value == .aws else {
            throw StepError.permanent("pool \(pool.name.value): provider \(pool.provider.value) is not an aws provider")
        }
        return EC2Client(endpoint: provider.ec2Endpoint, region: provider.ec2Region, credentials: try await provider.awsCredentials(context.credentials))
    }

    /// The tags that say "this pool of this cluster": what lookups filter on.
    func identity(_ pool: GPUPoolSpec) -> [String: String] {
        ["provision:cluster": context.inventory.cluster.name.value, "provision:pool": pool.name.value]
    }

    /// Live (pending or running) instances of the pool.
    func live(_ pool: GPUPoolSpec, _ client: EC2Client) async throws -> [EC2Instance] {
        try await client.liveInstances(tagged: identity(pool))
    }

    static func expiry(_ instance: EC2Instance) -> Date? {
        instance.tags["provision:expires-at"].flatMap { ISO8601DateFormatter().date(from: $0) }
    }

    static func launched(_ instance: EC2Instance) -> Date? {
        guard let text = instance.launchTime else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    /// The Node an instance registered as: the one whose InternalIP is the instance's address.
    static func node(of instance: EC2Instance, in nodes: [JSON]) -> JSON? {
        nodes.first { node in
            node[path: "status.addresses"]?.array?.contains { $0["type"] == "InternalIP" && $0["address"]?.string == instance.privateAddress } ?? false
        }
    }

    /// Nodes left by GPU workers whose machines are gone: labelled for one of `pools` (or, for
    /// workers older than the label, at the address of one of the pools' instances), and at no
    /// address of an instance that is not terminated, so no kubelet can register them again. A Node
    /// that is merely NotReady and not in the inventory is never taken for one: it may be rebooting.
    func orphanedNodes(_ pools: [GPUPoolSpec]) async throws -> [JSON] {
        guard let kube = kube() else { return [] }
        let names = Set(pools.map(\.name.value))
        var known = Set<String>(), up = Set<String>()
        for pool in pools {
            let client = try await client(pool)
            for instance in try await client.instances(tagged: identity(pool)) {
                guard let address = instance.privateAddress else { continue }
                if instance.state == "terminated" { known.insert(address) } else { up.insert(address) }
            }
        }
        let inventoryNodes = Set(context.inventory.nodes.map(\.hostname))
        return try await kube.list("v1", "Node").filter { node in
            guard !inventoryNodes.contains(node.name) else { return false }
            let addresses = Set(node[path: "status.addresses"]?.array?.compactMap { $0["address"]?.string } ?? [])
            guard addresses.isDisjoint(with: up) else { return false }
            let labelled = node[path: "metadata.labels"]?[MachineConfigRenderer.gpuPoolLabel]?.string.map(names.contains) ?? false
            return labelled || !addresses.isDisjoint(with: known)
        }
    }

    /// What of the pool still exists after a teardown: Nodes, instances not terminated, spot
    /// requests still open or active. Empty when `gpu down` is done.
    func leftovers(_ pool: GPUPoolSpec) async throws -> [String] {
        let client = try await client(pool)
        let instances = try await client.instances(tagged: identity(pool))
        var left = instances.filter { $0.state != "terminated" }.map { "instance \($0.id) is \($0.state)" }
        let requests = Array(Set(instances.compactMap(\.spotRequestID))).sorted()
        for (id, state) in try await client.spotRequestStates(ids: requests).sorted(by: { $0.key < $1.key }) where ["open", "active"].contains(state) {
            left.append("spot request \(id) is \(state)")
        }
        left += try await orphanedNodes([pool]).map { "Node \($0.name) is still registered" }
        return left
    }

    /// The Kubernetes client when a kubeconfig exists; the GPU teardown works without one.
    func kube() -> KubeClient? { try? KubeAccess.from(context).kube() }
}

/// The GPU pools as metrics see them (`--metrics-file`): every live instance with its seconds to
/// expiry, from the tags alone. Nil when EC2 does not answer (the metrics then leave the pools out
/// rather than report zero).
public enum GPUMetrics {
    public static func instances(_ context: StepContext, now: Date = Date()) async -> [RunMetrics.GPUInstance]? {
        let pools = GPUPools(context: context)
        var found: [RunMetrics.GPUInstance] = []
        for pool in context.inventory.gpuPools {
            guard let client = try? await pools.client(pool), let live = try? await pools.live(pool, client) else { return nil }
            found += live.map { instance in
                RunMetrics.GPUInstance(pool: pool.name.value, id: instance.id, state: instance.state,
                                       secondsToExpiry: GPUPools.expiry(instance).map { $0.timeIntervalSince(now) })
            }
        }
        return found
    }
}
