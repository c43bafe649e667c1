import Foundation
import TalosKit

/// What re-renders a control plane's static pods, as Talos derives them (talos v1.13.9
/// `controllers/k8s/control_plane.go`, `control_plane_static_pod.go`, `secrets/root.go`,
/// `secrets/kubernetes.go`): each pod carries the COSI version of its own config resource
/// (`talos.dev/config-version`) and of the static-pod secrets (`talos.dev/secrets-version`); the
/// apiserver also carries `talos.dev/config-file-version`, which includes the scheduler's config.
/// A resource's version moves only when what feeds it changes (COSI skips equal writes), and
/// versions start again at each boot (they live in memory).
enum StaticPodInputs {
    /// The config resources by component, and `secrets` for the static pods' secrets.
    static let resources = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "secrets"]

    /// The text each resource is made from: a change to it is a new version. The lab reads the
    /// subtrees the controllers read, whole (finer reads, such as which apiServer fields the
    /// controller actually copies, are not modelled: an assumption that errs towards a restart).
    static func of(_ config: AppliedConfig) -> [String: String] {
        let main = config.main
        let cluster = main?["cluster"]
        func text(_ values: ConfigValue?...) -> String { values.map { $0?.yaml ?? "~" }.joined(separator: "\n---\n") }
        var apiServer = cluster?["apiServer"]
        if case let .map(entries)? = apiServer { apiServer = .map(entries.filter { $0.key != "certSANs" }) }
        let network = cluster?["network"]
        return [
            "kube-apiserver": text(apiServer, cluster?["controlPlane"], network?["serviceSubnets"], cluster?["externalCloudProvider"]),
            "kube-controller-manager": text(cluster?["controllerManager"], network?["podSubnets"], network?["serviceSubnets"],
                                            cluster?["externalCloudProvider"], main?["machine"]?["controlPlane"]?["controllerManager"]),
            "kube-scheduler": text(cluster?["scheduler"], main?["machine"]?["controlPlane"]?["scheduler"]),
            // KubernetesRoot: the CAs, the endpoint, certSANs, service subnets; any change re-issues the
            // components' kubeconfigs, so all three pods get a new secrets-version.
            "secrets": text(cluster?["ca"], cluster?["aggregatorCA"], cluster?["serviceAccount"], cluster?["controlPlane"]?["endpoint"],
                            cluster?["apiServer"]?["certSANs"], network?["serviceSubnets"], network?["dnsDomain"]),
        ]
    }

    /// The pods a change of these resources re-renders.
    static func pods(restartedBy changed: Set<String>) -> Set<String> {
        var pods: Set<String> = []
        if changed.contains("secrets") { pods.formUnion(["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) }
        for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] where changed.contains(component) { pods.insert(component) }
        // The scheduler's config is part of the apiserver's config-file-version.
        if changed.contains("kube-scheduler") { pods.insert("kube-apiserver") }
        return pods
    }
}
