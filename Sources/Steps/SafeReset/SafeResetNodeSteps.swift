import Foundation
import KubeKit
import ProvisionCore

/// `confirm`: the operator types the node's name before anything destructive; `--yes` (or cron,
/// where the command itself demands `--yes`) confirms up front. A reset under way needs no second yes.
public struct Confirm: StepKind {
    public let info = StepKindInfo(name: "confirm", summary: "ask for a typed confirmation unless --yes",
                                   estimate: .seconds(5), scope: .any, mutates: false, defaultTimeout: .seconds(600), parameters: ["prompt"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        if context.arguments["yes"] == "true" { return .satisfied(["confirmed": "--yes"]) }
        if let node = step.node, resetUnderWay(node, context) { return .satisfied(["confirmed": "earlier"]) }
        return .pending("waiting for a typed confirmation")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let expected = step.node ?? context.inventory.name
        guard isatty(STDIN_FILENO) == 1 else { throw StepError.refused("a typed confirmation is needed and stdin is not a terminal; pass --yes") }
        let prompt = step.parameters.string("prompt") ?? "continue"
        let answer: String? = await withCheckedContinuation { continuation in
            Thread {
                FileHandle.standardError.write(Data("Type \(expected) to \(prompt): ".utf8))
                continuation.resume(returning: readLine())
            }.start()
        }
        guard answer?.trimmingCharacters(in: .whitespaces) == expected else { throw StepError.refused("not confirmed; nothing was changed") }
        return ["confirmed": "typed"]
    }
}

/// The node's Node object name: its hostname.
func kubeNodeName(_ step: StepInstance, _ context: StepContext) throws -> String {
    let node = try step.requireNode()
    return context.inventory.node(named: node)?.hostname ?? node
}

/// `kube.cordon`: no new pods go to the node and the ones there are evicted (budgets respected).
public struct KubeCordon: StepKind {
    public let info = StepKindInfo(name: "kube.cordon", summary: "cordon and drain a node, respecting PodDisruptionBudgets",
                                   estimate: .seconds(60), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        // Its reset is recorded only once it was drained; after it the API may be down (etcd's last member).
        if TalosReset.underWay(try step.requireNode(), context) != nil { return .satisfied(["node": "drained before its reset"]) }
        let name = try kubeNodeName(step, context)
        let kube = try KubeAccess.from(context).kube()
        guard let node = try await kube.get("v1", "Node", name: name) else { return .satisfied(["node": "absent"]) }
        guard node[path: "spec.unschedulable"]?.bool == true else { return .pending("\(name) is schedulable") }
        let pods = try await kube.list("v1", "Pod", fieldSelector: "spec.nodeName=\(name)").filter(KubeClient.evictable)
        return pods.isEmpty ? .satisfied(["node": "drained"]) : .pending("\(pods.count) pods still on \(name)")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let name = try kubeNodeName(step, context)
        let evicted = try await KubeAccess.from(context).kube().drain(name, timeout: .seconds(600), interval: TalosAccess.from(context).pollInterval)
        context.log("\(name) cordoned; \(evicted.count) pods evicted", step: step)
        return ["evicted": "\(evicted.count)"]
    }
}

/// `kube.delete-node`: the Node object goes, so the node rejoins as new after its reset. With
/// `schedulable: delete` (a removal) any Node of that name goes; otherwise a fresh, schedulable one
/// is taken for the node already back, and kept.
public struct KubeDeleteNode: StepKind {
    public let info = StepKindInfo(name: "kube.delete-node", summary: "delete the Node object", estimate: .seconds(3), scope: .node,
                                   parameters: ["schedulable"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let name = try kubeNodeName(step, context)
        let node: JSON?
        do { node = try await KubeAccess.from(context).kube().get("v1", "Node", name: name) } catch let error as any ClassifiedError where error.isTransient {
            guard try await Self.etcdGoneWithReset(step, context) else { throw error }
            context.log("the Kubernetes API cannot answer: \(name) held etcd's last data; its Node comes back with the snapshot, and its kubelet registers with it again", step: step)
            return .satisfied(["node": name, "kept": "etcd is gone until the snapshot brings it back, with this Node as it was"])
        }
        guard let node else { return .satisfied(["node": name]) }
        if step.parameters.string("schedulable") != "delete", node[path: "spec.unschedulable"]?.bool != true { return .satisfied(["node": name]) }
        return .pending("Node \(name) still exists")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let name = try kubeNodeName(step, context)
        try await KubeAccess.from(context).kube().deleteNode(name)
        return ["node": name]
    }

    /// The API cannot answer because the node reset was etcd's last member (it was wiped, and every
    /// other control plane answers that its etcd has no data): its Node is in the snapshot `talos.etcd-reseed` brings back, and its kubelet
    /// registers with it again, so there is nothing to delete, and nothing could be.
    static func etcdGoneWithReset(_ step: StepInstance, _ context: StepContext) async throws -> Bool {
        let node = try step.requireNode()
        guard TalosReset.underWay(node, context) != nil, context.inventory.node(named: node)?.role.value == .controlplane else { return false }
        return await TalosEtcdReseed.dataHolders(besides: node, context).isEmpty
    }
}

/// `kube.uncordon`: the node, registered again, takes pods again; the safe reset is over, so its
/// record is cleared and a later safe reset of the node starts from the checks.
public struct KubeUncordon: StepKind {
    public let info = StepKindInfo(name: "kube.uncordon", summary: "make the node schedulable again", estimate: .seconds(3), scope: .node,
                                   defaultTimeout: .seconds(600))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let name = try kubeNodeName(step, context)
        let node = try await KubeAccess.from(context).kube().get("v1", "Node", name: name)
        guard let node else { return .pending("Node \(name) has not registered yet") }
        if node[path: "spec.unschedulable"]?.bool == true { return .pending("\(name) is cordoned") }
        if resetUnderWay(try step.requireNode(), context) { return .pending("the reset record of \(name) is still there") }
        return .satisfied(["node": name])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let name = try kubeNodeName(step, context)
        let kube = try KubeAccess.from(context).kube()
        _ = try await waitFor("Node \(name) to register", interval: TalosAccess.from(context).pollInterval, step: step, context: context,
                              wake: kube.wake(.object("v1", "Node", name: name))) {
            try await kube.get("v1", "Node", name: name) != nil ? true : nil
        }
        try await kube.cordon(name, false)
        TalosReset.clear(context, node: try step.requireNode())
        context.log("\(name) is schedulable again; the safe reset is complete", step: step)
        return ["node": name]
    }
}
