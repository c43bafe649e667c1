import Foundation
import KubeKit
import ProvisionCore

/// `kube.verify`: the end state `up` promises, checked from live state: every control plane a
/// healthy etcd member, every inventory node Ready, and the foundation's store Ready. It changes
/// nothing; until it all holds it waits, then names what is still wrong.
public struct KubeVerify: StepKind {
    public let info = StepKindInfo(name: "kube.verify", summary: "check nodes Ready, etcd members and foundation health",
                                   estimate: .seconds(10), scope: .cluster, mutates: false, defaultTimeout: .seconds(300))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let problems = try await problems(context)
        return problems.isEmpty ? .satisfied(["nodes": "\(context.inventory.nodes.count)"]) : .pending(problems.joined(separator: "; "))
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let kube = try KubeAccess.from(context).kube()
        try await kube.wait(for: "the cluster to check out", timeout: .seconds(300), interval: TalosAccess.from(context).pollInterval) {
            let problems = try await problems(context)
            return problems.isEmpty ? nil : problems.joined(separator: "; ")
        }
        context.log("verified: \(context.inventory.nodes.count) nodes Ready, \(context.inventory.controlPlanes.count) etcd members", step: step)
        return ["nodes": "\(context.inventory.nodes.count)"]
    }

    func problems(_ context: StepContext) async throws -> [String] {
        var problems: [String] = []
        if case let .failure(reason) = try await TalosAwaitEtcd().check(context) { problems.append(reason.description) }
        let kube = try KubeAccess.from(context).kube()
        let notReady = try await kube.notReadyNodes(context.inventory.nodes.map(\.hostname))
        if !notReady.isEmpty { problems.append("not Ready: " + notReady.joined(separator: ", ")) }
        if context.inventory.foundation.kind.value == .onepassword {
            let store = try? await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: KubeFoundation.storeName)
            if store?.condition("Ready") != "True" { problems.append("ClusterSecretStore \(KubeFoundation.storeName) is not Ready") }
        }
        return problems
    }
}
