import Foundation
import TalosKit

/// The Kubernetes components a simulated node runs from its config: the static pods of a control
/// plane (kube-apiserver, kube-controller-manager, kube-scheduler) and the kubelet. A live config
/// change re-renders every static pod whose config resource or secrets it changes (`StaticPodInputs`),
/// and a new kubelet image restarts the kubelet; each is not ready while it restarts, and the lab's
/// record says when each restart began and when it was ready again.
extension SimulatedTalosNode {
    /// How long each component takes to restart on a new image, in lab seconds.
    static let restartSeconds: [String: Double] = [
        "kube-apiserver": 20, "kube-controller-manager": 10, "kube-scheduler": 10, "kubelet": 15,
    ]

    /// What runs now: process name -> version; a restarting component is absent from `ready`.
    public var componentStatus: [(name: String, version: String, ready: Bool)] {
        guard stage == .running else { return components.sorted { $0.key < $1.key }.map { ($0.key, $0.value, false) } }
        return components.sorted { $0.key < $1.key }.map { ($0.key, $0.value, !restarting.contains($0.key)) }
    }

    /// A boot starts every component at its config's version; the config resources' versions start
    /// again at 1 (COSI keeps them in memory).
    func startComponents(_ config: AppliedConfig) {
        components = config.components
        restarting = []
        staticPodInputs = StaticPodInputs.of(config)
        staticPodVersions = Dictionary(uniqueKeysWithValues: StaticPodInputs.resources.map { ($0, 1) })
    }

    /// A live config change: each config resource whose inputs changed gets a new version, the
    /// static pods they feed are re-rendered and restart, and a kubelet whose image changed restarts.
    func restartChanged(from old: AppliedConfig, to new: AppliedConfig) {
        let mark = epoch
        let inputs = StaticPodInputs.of(new)
        let changed = Set(StaticPodInputs.resources.filter { inputs[$0] != staticPodInputs[$0] })
        staticPodInputs = inputs
        for resource in changed { staticPodVersions[resource, default: 0] += 1 }
        var restart = new.controlPlane ? StaticPodInputs.pods(restartedBy: changed) : []
        for (name, version) in new.components where old.components[name] != version { restart.insert(name) }
        for name in restart.sorted() {
            guard let version = new.components[name] else { continue }
            components[name] = version
            restarting.insert(name)
            directory.record.component(spec.name, name, version: version, stage: "restarting")
            Task { await self.finishRestart(name, version, mark) }
        }
    }

    /// A control plane's config resources (namespace `controlplane`) exist while its configured
    /// services run; their version as COSI prints it.
    func staticPodResourceVersion(type: String, id: String) -> String? {
        guard servicesUp, config?.controlPlane == true else { return nil }
        let key: String?
        switch type {
        case StaticPodVersions.configFilesType: return id == "static-pods" ? "1" : nil
        case StaticPodVersions.secretsType: key = id == "static-pods" ? "secrets" : nil
        default: key = StaticPodVersions.configTypes[id] == type ? id : nil
        }
        return key.flatMap { staticPodVersions[$0] }.map { "\($0)" }
    }

    /// The static pod annotations Talos writes, for the lab's mirror pods.
    func staticPodAnnotations(_ component: String) -> [String: String] {
        var annotations = ["talos.dev/config-version": "\(staticPodVersions[component] ?? 1)",
                           "talos.dev/secrets-version": "\(staticPodVersions["secrets"] ?? 1)"]
        if component == "kube-apiserver" { annotations["talos.dev/config-file-version"] = configFilesVersion }
        return annotations
    }

    /// The `static-pods` ConfigStatus's version: the admission, audit and authorization configs'
    /// versions (1 here: the lab does not model their changes) and the scheduler config's, joined.
    var configFilesVersion: String { "111\(staticPodVersions["kube-scheduler"] ?? 1)" }

    private func finishRestart(_ name: String, _ version: String, _ mark: Int) async {
        guard await pause(Self.restartSeconds[name] ?? 10, mark, atLeast: .milliseconds(50)), components[name] == version else { return }
        restarting.remove(name)
        directory.record.component(spec.name, name, version: version, stage: "ready")
    }
}
