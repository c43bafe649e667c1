import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// `kube.upgrade`: brings the cluster's Kubernetes to the inventory's `kubernetesVersion`, one
/// component on one node at a time, as `talosctl upgrade-k8s` orders it but with the config
/// re-rendered from the inventory (never patched from the live one, so the stored configs and the
/// nodes cannot drift apart): kube-apiserver on every control plane, then kube-controller-manager,
/// kube-scheduler and kube-proxy; then the kubelets, control planes first. Each move is a NO_REBOOT
/// apply of the node's config with that one component at the target, written to the cluster's
/// recorded versions first (so a killed run renders the same config and resumes there), then a
/// wait until the component runs the new version and is Ready (its static pod; for a kubelet, the
/// Node's `kubeletVersion`). At the end the recorded version is the target: GPU workers launched
/// later join at it. No manifest is applied, so nothing Cilium's own installer manages is touched.
public struct KubeUpgrade: StepKind {
    public let info = StepKindInfo(name: "kube.upgrade", summary: "upgrade Kubernetes one component on one node at a time, by NO_REBOOT config changes",
                                   estimate: .seconds(300), scope: .cluster, defaultTimeout: .seconds(7200), parameters: [])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        if context.arguments["scope"] == "talos" || context.arguments["node"] != nil { return .satisfied(["kubernetes": "not selected"]) }
        let survey = await KubernetesSurvey.read(context)
        if let problem = survey.problems.first { throw StepError.permanent(problem) }
        let recorded = KubernetesVersions.load(stateDirectory: context.stateDirectory)
        if survey.moves.isEmpty, recorded?.version == survey.to || recorded == nil { return .satisfied(["kubernetes": survey.to]) }
        for move in survey.moves {
            context.plan(PlannedChange(node: move.node, resource: move.component.processName, action: "upgrade",
                                       reason: "\(move.from) -> \(survey.to), live (NO_REBOOT)", reboot: false), step: step)
        }
        return .pending("Kubernetes \(survey.from) -> \(survey.to): \(survey.moves.count) component moves")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let survey = await KubernetesSurvey.read(context)
        if let problem = survey.problems.first { throw StepError.permanent(problem) }
        if !survey.unreachable.isEmpty {
            throw StepError.transient("\(survey.unreachable.joined(separator: ", ")) did not answer; every node's version must be known before Kubernetes moves")
        }
        var versions = try KubernetesVersions.recorded(stateDirectory: context.stateDirectory, version: survey.from)
        versions.target = survey.to
        try versions.save(stateDirectory: context.stateDirectory)
        for move in survey.moves {
            try await self.move(move, to: survey.to, versions: &versions, step, context)
        }
        let finished = KubernetesVersions(version: survey.to)
        try finished.save(stateDirectory: context.stateDirectory)
        context.log("Kubernetes \(survey.to) on every node; the cluster's recorded version is \(survey.to)", step: step)
        try await noteGPUWorkers(survey.to, step, context)
        return ["kubernetes": survey.to, "moves": "\(survey.moves.count)"]
    }

    func move(_ move: KubernetesSurvey.Move, to target: String, versions: inout KubernetesVersions, _ step: StepInstance, _ context: StepContext) async throws {
        versions.nodes[move.node, default: [:]][move.component] = target
        try versions.save(stateDirectory: context.stateDirectory)
        let access = TalosAccess.from(context)
        let config = try await access.config(for: move.node)
        // What Talos re-renders besides the moved component (a scheduler move re-renders the
        // kube-apiserver too: its config-file-version includes the scheduler's config) is waited for.
        let before = move.component == .kubelet || move.component == .proxy ? nil : try? await access.client(move.node, .admin).staticPodVersions()
        do {
            _ = try await access.client(move.node, .admin).applyConfiguration(config, mode: .noReboot)
        } catch let TalosError.rejected(message) {
            throw StepError.permanent("\(move.node) refused \(move.component.processName) \(target) live: \(message)")
        }
        context.log("\(move.node): \(move.component.processName) \(move.from) -> \(target) sent (NO_REBOOT)", step: step)
        let hostname = context.inventory.node(named: move.node)?.hostname ?? move.node
        let kube = try KubeAccess.from(context).kube()
        let what = "\(move.component.processName) on \(move.node) to run \(target) and be Ready"
        switch move.component {
        case .proxy:
            return // a DaemonSet Talos' manifests roll out; disabled with Cilium's kube-proxy replacement
        case .kubelet:
            try await kube.wait(for: what, timeout: access.scaled(.seconds(180)), interval: access.pollInterval,
                                watching: .object("v1", "Node", name: hostname)) {
                guard let node = try await kube.get("v1", "Node", name: hostname) else { return "no Node \(hostname)" }
                let version = node[path: "status.nodeInfo.kubeletVersion"]?.string ?? "?"
                if version != target { return "kubelet reports \(version)" }
                return node.condition("Ready") == "True" ? nil : "Node not Ready"
            }
        default:
            let pod = "\(move.component.processName)-\(hostname)"
            try await kube.wait(for: what, timeout: access.scaled(.seconds(300)), interval: access.pollInterval,
                                watching: .object("v1", "Pod", name: pod, namespace: "kube-system")) {
                guard let object = try await kube.get("v1", "Pod", name: pod, namespace: "kube-system") else { return "no pod \(pod)" }
                let image = object[path: "spec.containers"]?.array?.first?["image"]?.string ?? ""
                if !image.hasSuffix(":" + target) { return "pod runs \(image)" }
                return object.condition("Ready") == "True" ? nil : "pod not Ready"
            }
            if let before { try await StaticPodRollout(node: move.node, step: step, context: context).wait(since: before) }
        }
        context.log("\(move.node): \(move.component.processName) runs \(target) and is Ready", step: step)
    }

    /// GPU workers are not inventory nodes: they join at the recorded version when next launched.
    func noteGPUWorkers(_ version: String, _ step: StepInstance, _ context: StepContext) async throws {
        guard !context.inventory.gpuPools.isEmpty, let kube = try? KubeAccess.from(context).kube() else { return }
        let workers = (try? await kube.list("v1", "Node", labelSelector: MachineConfigRenderer.gpuPoolLabel)) ?? []
        for worker in workers where worker[path: "status.nodeInfo.kubeletVersion"]?.string != version {
            context.log("GPU worker \(worker.name) runs kubelet \(worker[path: "status.nodeInfo.kubeletVersion"]?.string ?? "?"); its pool's next launch joins at \(version)", level: .warning, step: step)
        }
    }
}
