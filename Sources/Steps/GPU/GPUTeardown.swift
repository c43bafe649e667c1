import Foundation
import KubeKit
import Providers
import ProvisionCore

/// `gpu.drain`: the pool's nodes are cordoned and drained (PodDisruptionBudgets respected). Their
/// Node objects stay until the instances are terminated (`gpu.remove-nodes`): a kubelet that still
/// runs registers a deleted Node again. Without a kubeconfig there is nothing to drain.
public struct GPUDrain: StepKind {
    public let info = StepKindInfo(name: "gpu.drain", summary: "cordon and drain the pool's nodes",
                                   estimate: .seconds(60), scope: .cluster, defaultTimeout: .seconds(900))

    public init() {}

    func nodes(_ step: StepInstance, _ context: StepContext) async throws -> [JSON] {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        guard let kube = pools.kube() else { return [] }
        let all = try await kube.list("v1", "Node")
        return try await pools.live(pool, try await pools.client(pool)).compactMap { GPUPools.node(of: $0, in: all) }
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let nodes = try await nodes(step, context)
        return nodes.isEmpty ? .satisfied([:]) : .pending("nodes to drain: " + nodes.map(\.name).joined(separator: ", "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard let kube = GPUPools(context: context).kube() else { return [:] }
        var drained: [String] = []
        for node in try await nodes(step, context) {
            let evicted = try await kube.drain(node.name, timeout: .seconds(600), interval: TalosAccess.from(context).pollInterval)
            context.log("\(node.name): cordoned and drained (\(evicted.count) pods evicted)", step: step)
            drained.append(node.name)
        }
        return ["nodes": drained.joined(separator: ",")]
    }
}

/// `gpu.terminate`: spot requests cancelled first (a persistent request would relaunch), every
/// instance of the pool terminated, and waited for until EC2 reports it terminated.
public struct GPUTerminate: StepKind {
    public let info = StepKindInfo(name: "gpu.terminate", summary: "cancel spot requests, terminate the pool's instances and verify nothing is left",
                                   estimate: .seconds(60), scope: .cluster, defaultTimeout: .seconds(600))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let left = try await pools.client(pool).unterminatedInstances(tagged: pools.identity(pool))
        return left.isEmpty ? .satisfied(["running": "0"]) : .pending("not terminated: " + left.map { "\($0.id) (\($0.state))" }.joined(separator: ", "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let client = try await pools.client(pool)
        let terminated = try await Self.terminate(try await pools.live(pool, client), client: client, step: step, context: context, reason: "gpu down")
        // Terminated, not merely shutting down: until then the machine (and its kubelet) may be up.
        _ = try await waitFor("every instance of pool \(pool.name.value) to be terminated", interval: TalosAccess.from(context).pollInterval, step: step, context: context) {
            let left = try await client.unterminatedInstances(tagged: pools.identity(pool))
            if left.isEmpty { return true }
            // A request that relaunched in between is cancelled and its instance terminated too.
            _ = try await Self.terminate(left.filter(\.isLive), client: client, step: step, context: context, reason: "left after gpu down")
            return nil
        }
        return ["terminated": terminated.joined(separator: ",")]
    }

    static func terminate(_ instances: [EC2Instance], client: EC2Client, step: StepInstance, context: StepContext, reason: String) async throws -> [String] {
        guard !instances.isEmpty else { return [] }
        let requests = instances.compactMap(\.spotRequestID)
        if !requests.isEmpty { try await client.cancelSpotInstanceRequests(ids: requests) }
        _ = try await client.terminateInstances(ids: instances.map(\.id))
        context.log("terminated \(instances.map(\.id).joined(separator: ", ")) (\(reason))", step: step)
        return instances.map(\.id)
    }
}

/// `gpu.remove-nodes`: once the pool's instances are terminated, their Node objects are deleted
/// (no kubelet is left to register them again), and the teardown is verified: no Node, no
/// instance that is not terminated, no spot request still open or active.
public struct GPURemoveNodes: StepKind {
    public let info = StepKindInfo(name: "gpu.remove-nodes", summary: "delete the Nodes of terminated instances and verify nothing of the pool is left",
                                   estimate: .seconds(10), scope: .cluster, defaultTimeout: .seconds(300))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let left = try await pools.leftovers(pool)
        return left.isEmpty ? .satisfied([:]) : .pending(left.joined(separator: "; "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        var deleted: [String] = []
        if let kube = pools.kube() {
            for node in try await pools.orphanedNodes([pool]) {
                _ = try await kube.deleteNode(node.name)
                context.log("deleted Node \(node.name): its instance is terminated", step: step)
                deleted.append(node.name)
            }
        }
        let left = try await pools.leftovers(pool)
        guard left.isEmpty else { throw StepError.transient("pool \(pool.name.value) is not gone yet: " + left.joined(separator: "; ")) }
        return ["nodes": deleted.joined(separator: ",")]
    }
}

/// `gpu.sweep`: every pool's instances past their `provision:expires-at` tag or the pool's
/// maxLifetime are terminated, from the tags alone (no journal, no state directory needed), and
/// Node objects left by instances that are gone are deleted when a kubeconfig is at hand.
public struct GPUSweep: StepKind {
    public let info = StepKindInfo(name: "gpu.sweep", summary: "terminate every tagged instance past its expiry or max lifetime; remove orphaned Nodes",
                                   estimate: .seconds(30), scope: .cluster, defaultTimeout: .seconds(600))

    public init() {}

    func expired(_ context: StepContext, now: Date = Date()) async throws -> [(GPUPoolSpec, EC2Client, [EC2Instance])] {
        let pools = GPUPools(context: context)
        var found: [(GPUPoolSpec, EC2Client, [EC2Instance])] = []
        for pool in context.inventory.gpuPools {
            let client = try await pools.client(pool)
            let overdue = try await pools.live(pool, client).filter { instance in
                let expiry = GPUPools.expiry(instance)
                let ageLimit = GPUPools.launched(instance).map { $0.addingTimeInterval(TimeInterval(pool.maxLifetime.value.components.seconds)) }
                return [expiry, ageLimit].compactMap { $0 }.contains { $0 <= now } || (expiry == nil && ageLimit == nil)
            }
            if !overdue.isEmpty { found.append((pool, client, overdue)) }
        }
        return found
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let overdue = try await expired(context).flatMap { $0.2.map(\.id) }
        let orphans = try await GPUPools(context: context).orphanedNodes(context.inventory.gpuPools).map(\.name)
        if overdue.isEmpty && orphans.isEmpty { return .satisfied(["expired": "0"]) }
        let notes = (overdue.isEmpty ? [] : ["past expiry: " + overdue.joined(separator: ", ")])
            + (orphans.isEmpty ? [] : ["Nodes without an instance: " + orphans.joined(separator: ", ")])
        return .pending(notes.joined(separator: "; "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        var terminated: [String] = []
        for (pool, client, instances) in try await expired(context) {
            terminated += try await GPUTerminate.terminate(instances, client: client, step: step, context: context, reason: "pool \(pool.name.value): expired")
        }
        let pools = GPUPools(context: context)
        if let kube = pools.kube() {
            for node in try await pools.orphanedNodes(context.inventory.gpuPools) {
                _ = try await kube.deleteNode(node.name)
                context.log("deleted Node \(node.name): its instance is gone", step: step)
            }
        }
        return ["terminated": terminated.joined(separator: ",")]
    }
}
