import Foundation
import KubeKit
import Providers
import ProvisionCore

/// `gpu.launch`: the pool's instance exists: found by its tags, or launched with the pool's worker
/// config as gzip'd user data, IMDSv2, and tags on instance and volume (cluster, pool, owner,
/// expiry), with a ClientToken for this run so a retried call cannot launch twice.
public struct GPULaunch: StepKind {
    public let info = StepKindInfo(name: "gpu.launch", summary: "launch (or find) the pool's tagged instance with the worker config as user-data",
                                   estimate: .seconds(90), scope: .cluster, defaultTimeout: .seconds(600), parameters: ["ttl"])
    static let labAMI = "ami-0123456789abcdef0"

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let live = try await pools.live(pool, try await pools.client(pool))
        guard live.count >= pool.count, let first = live.first else { return .pending("\(live.count) of \(pool.count) instances running") }
        return .satisfied(Self.outputs(first))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        let client = try await pools.client(pool)
        if let existing = try await pools.live(pool, client).first { return Self.outputs(existing) }
        guard let ami = pool.ami?.value ?? (context.inventory.lab != nil ? Self.labAMI : nil) else {
            throw StepError.permanent("pool \(pool.name.value) needs `ami:` (the Talos AMI for \(context.inventory.cluster.talosVersion.value) in its region)")
        }
        let ttl = context.arguments["ttl"].flatMap(DurationText.parse) ?? pool.defaultTTL.value
        let expires = Date().addingTimeInterval(TimeInterval(ttl.components.seconds))
        var tags = pools.identity(pool)
        tags["provision:owner"] = pool.owner?.value ?? context.inventory.cluster.name.value
        tags["provision:node"] = "\(context.inventory.cluster.name.value)-\(pool.name.value)"
        tags["provision:expires-at"] = ISO8601DateFormatter().string(from: expires)
        tags["Name"] = "\(context.inventory.cluster.name.value)-\(pool.name.value)"
        var spec = EC2LaunchSpec(imageID: ami, instanceType: pool.instanceType.value,
                                 clientToken: String("provision-\(pool.name.value)-\(context.runID)".prefix(64)), tags: tags)
        spec.subnetID = pool.subnet?.value
        spec.securityGroupIDs = pool.securityGroups.map(\.value)
        spec.spot = pool.market.value == .spot
        let root = pool.rootVolume?.value ?? GPUPoolSpec.defaultRootVolume
        spec.rootVolumeGiB = Int((root + (1 << 30) - 1) >> 30)
        do { spec.userData = try EC2UserData.encode(try await TalosAccess.from(context).config(forPool: pool)) } catch let tooLarge as EC2UserData.TooLarge {
            throw StepError.permanent("pool \(pool.name.value): \(tooLarge)")
        }
        guard let instance = try await client.runInstances(spec).first else { throw StepError.transient("RunInstances returned no instance") }
        context.log("launched \(instance.id) (\(pool.instanceType.value)\(spec.spot ? ", spot" : ""), \(spec.rootVolumeGiB ?? 0) GiB gp3 root); it expires \(tags["provision:expires-at"]!)", step: step)
        return Self.outputs(instance)
    }

    static func outputs(_ instance: EC2Instance) -> StepOutputs {
        var outputs = ["instance": instance.id, "state": instance.state]
        if let address = instance.privateAddress { outputs["address"] = address }
        if let expires = instance.tags["provision:expires-at"] { outputs["expiresAt"] = expires }
        return outputs
    }
}

/// `gpu.await-ready`: the pool's instance has joined the cluster as a Ready node.
public struct GPUAwaitReady: StepKind {
    public let info = StepKindInfo(name: "gpu.await-ready", summary: "wait for the GPU worker to join and turn Ready",
                                   estimate: .seconds(240), scope: .cluster, mutates: false, defaultTimeout: .seconds(900))

    public init() {}

    func check(_ step: StepInstance, _ context: StepContext) async throws -> Result<StepOutputs, StepError> {
        let pools = GPUPools(context: context)
        let pool = try pools.pool(step)
        guard let instance = try await pools.live(pool, try await pools.client(pool)).first else {
            return .failure(.permanent("pool \(pool.name.value) has no running instance; `provision gpu up` launches one"))
        }
        let kube = try KubeAccess.from(context).kube()
        guard let node = GPUPools.node(of: instance, in: try await kube.list("v1", "Node")) else {
            return .failure(.transient("\(instance.id) (\(instance.privateAddress ?? "no address yet")) has not registered as a node"))
        }
        guard node.condition("Ready") == "True" else { return .failure(.transient("node \(node.name) is not Ready")) }
        var outputs = GPULaunch.outputs(instance)
        outputs["node"] = node.name
        return .success(outputs)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        switch try await check(step, context) {
        case let .success(outputs): return .satisfied(outputs)
        case let .failure(reason): return .pending("\(reason)")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let outputs = try await waitFor("the GPU worker", interval: TalosAccess.from(context).pollInterval, step: step, context: context) {
            switch try await check(step, context) {
            case let .success(outputs): return outputs
            case let .failure(error) where error.isTransient: return nil
            case let .failure(error): throw error
            }
        }
        context.log("GPU worker \(outputs["node"] ?? "") is Ready; it expires \(outputs["expiresAt"] ?? "when its tags say")", step: step)
        return outputs
    }
}
