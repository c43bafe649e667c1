import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// The Kubernetes upgrade a cluster needs, read live: what each node's active config runs, the one
/// ordered list of moves (kube-apiserver, then kube-controller-manager, kube-scheduler and
/// kube-proxy, each one control plane at a time; then the kubelets, control planes first), and the
/// checks that refuse a target before anything is touched (reference/day2.md 2.4, 2.5).
public struct KubernetesSurvey: Sendable {
    /// What Talos hops are checked against: the Kubernetes the cluster runs now (Talos goes first).
    static func running(_ context: StepContext) -> String {
        KubernetesVersions.load(stateDirectory: context.stateDirectory)?.version ?? context.inventory.cluster.kubernetesVersion.value
    }

    public struct Move: Sendable, Equatable {
        public var node: String
        public var component: KubernetesVersions.Component
        public var from: String
    }

    public var from: String
    public var to: String
    public var moves: [Move] = []
    public var problems: [String] = []
    public var unreachable: [String] = []

    /// `talosAfter`: the Talos each node will run when the Kubernetes part starts (the Talos part
    /// goes first), by node; nodes not in it are taken at what they run.
    public static func read(_ context: StepContext, talosAfter: [String: String] = [:]) async -> KubernetesSurvey {
        let inventory = context.inventory
        let to = inventory.cluster.kubernetesVersion.value
        let recorded = KubernetesVersions.load(stateDirectory: context.stateDirectory)
        var survey = KubernetesSurvey(from: recorded?.version ?? to, to: to)
        if let target = recorded?.target, target != to {
            survey.problems.append("a Kubernetes upgrade to \(target) is under way; set kubernetesVersion back to \(target) and finish it with `provision upgrade \(inventory.name)` first")
            return survey
        }
        do { try KubernetesReleases.check(from: survey.from, to: to) } catch {
            survey.problems.append("\(error)")
            return survey
        }
        let access = TalosAccess.from(context)
        var running: [String: [KubernetesVersions.Component: String]] = [:]
        for spec in inventory.nodes {
            let name = spec.name.value
            guard let client = try? await access.client(name, .admin, timeout: .seconds(5)),
                  let text = try? await client.machineConfig(.active), let documents = try? ConfigDocuments(yaml: text),
                  let talos = try? await client.version().version.tag else {
                survey.unreachable.append(name)
                continue
            }
            running[name] = documents.kubernetesComponents
            let talosMinor = TalosReleases.minor(of: talosAfter[name] ?? talos)
            if let window = talosMinor?.kubernetes, let want = KubernetesReleases.Version(to), want.minor < window.low || want.minor > window.high {
                survey.problems.append("\(name) runs Talos \(talosAfter[name] ?? talos), which runs Kubernetes 1.\(window.low) to 1.\(window.high), not \(to); upgrade its Talos first")
            }
            if let kubelet = documents.kubernetesComponents[.kubelet].flatMap(KubernetesReleases.Version.init), let want = KubernetesReleases.Version(to),
               kubelet.minor < want.minor - 3 {
                survey.problems.append("\(name)'s kubelet \(kubelet) would be more than three minors behind kube-apiserver \(to) (the skew policy); bring it up first")
            }
        }
        let controlPlanes = inventory.controlPlanes.map(\.name.value)
        let workers = inventory.nodes.filter { $0.role.value == .worker }.map(\.name.value)
        for component in [KubernetesVersions.Component.apiServer, .controllerManager, .scheduler, .proxy] {
            for node in controlPlanes {
                if let version = running[node]?[component], version != to { survey.moves.append(Move(node: node, component: component, from: version)) }
            }
        }
        for node in controlPlanes + workers {
            if let version = running[node]?[.kubelet], version != to { survey.moves.append(Move(node: node, component: .kubelet, from: version)) }
        }
        if !survey.moves.isEmpty { survey.problems += await removedAPIsInUse(context, from: survey.from, to: to) }
        return survey
    }

    /// API versions the target removes that still hold objects (from the cluster's discovery).
    static func removedAPIsInUse(_ context: StepContext, from: String, to: String) async -> [String] {
        let removed = KubernetesReleases.removedBetween(from, to)
        guard !removed.isEmpty, let kube = try? KubeAccess.from(context).kube() else { return [] }
        var problems: [String] = []
        for (groupVersion, resources) in removed {
            for resource in resources {
                guard let list = try? await kube.send(.GET, "/apis/\(groupVersion)/\(resource)"),
                      let count = list["items"]?.array?.count, count > 0 else { continue }
                problems.append("\(count) \(resource) are still served as \(groupVersion), which Kubernetes \(to) removes; migrate them first")
            }
        }
        return problems
    }
}
