import Foundation
import KubeKit
import Providers
import ProvisionCore

/// `gpu.drain`: the pool's nodes are cordoned, drained (PodDisruptionBudgets respected) and their
/// Node objects deleted, before anything is terminated. Without a kubeconfig there is nothing to drain.
public struct GPUDrain: StepKind {
    public let info = StepKindInfo(name: "gpu.drain", summary: "cordon and drain the pool's nodes and delete their Node objects",
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
            try await kube.deleteNode(node.name)
            context.log("\(node.name): drained (\(evicted.count) pods evicted) and deleted", step: step)
            drained.append(node.name)
        }
        return ["nodes": drained.joined(separator: ",")]
    }
}

/// `gpu.terminate`: spot requests cancelled first (a persistent request would relaunch), every
/// instance of the pool terminated, then verified: nothing tagged for the pool still runs.
public struct GPUTerminate: StepKind {
    public let info = StepKindInfo(name: "gpu.terminate", summary: "cancel spot requests, terminate the pool's instances and verify nothing is left",
                                   estimate: .seconds(60), scope: .cluster, defaultTimeout: .seconds(600))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let live = try await pools.live(pool, try await pools.client(pool))
        return live.isEmpty ? .satisfied(["running": "0"]) : .pending("running: " + live.map(\.id).joined(separator: ", "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let client = try await pools.client(pool)
        let terminated = try await Self.terminate(try await pools.live(pool, client), client: client, step: step, context: context, reason: "gpu down")
        _ = try await waitFor("nothing of pool \(pool.name.value) to run", interval: TalosAccess.from(context).pollInterval, step: step, context: context) {
            let left = try await pools.live(pool, client)
            if left.isEmpty { return true }
            // A request that relaunched in between is cancelled and its instance terminated too.
            _ = try await Self.terminate(left, client: client, step: step, context: context, reason: "left after gpu down")
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
        return overdue.isEmpty ? .satisfied(["expired": "0"]) : .pending("past expiry: " + overdue.joined(separator: ", "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        var terminated: [String] = []
        for (pool, client, instances) in try await expired(context) {
            terminated += try await GPUTerminate.terminate(instances, client: client, step: step, context: context, reason: "pool \(pool.name.value): expired")
        }
        if let kube = GPUPools(context: context).kube() {
            let inventoryNodes = Set(context.inventory.nodes.map(\.hostname))
            var liveAddresses = Set<String>()
            for pool in context.inventory.gpuPools {
                let pools = GPUPools(context: context)
                for instance in try await pools.live(pool, try await pools.client(pool)) { if let address = instance.privateAddress { liveAddresses.insert(address) } }
            }
            for node in try await kube.list("v1", "Node") where !inventoryNodes.contains(node.name) && node.condition("Ready") != "True" {
                let addresses = node[path: "status.addresses"]?.array?.compactMap { $0["address"]?.string } ?? []
                if addresses.contains(where: liveAddresses.contains) { continue }
                try await kube.deleteNode(node.name)
                context.log("deleted Node \(node.name): its instance is gone", step: step)
            }
        }
        return ["terminated": terminated.joined(separator: ",")]
    }
}
