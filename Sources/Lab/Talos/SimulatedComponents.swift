import Foundation

/// The Kubernetes components a simulated node runs from its config: the static pods of a control
/// plane (kube-apiserver, kube-controller-manager, kube-scheduler) and the kubelet. A config that
/// changes a component's image restarts that component (not ready meanwhile, as a real static pod
/// or the kubelet service is), and the lab's record says when each one came up on its new version.
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

    /// A boot starts every component at its config's version.
    func startComponents(_ config: AppliedConfig) {
        components = config.components
        restarting = []
        configGeneration += 1
    }

    /// A live config change: each component whose version changed restarts into the new one.
    func restartChanged(from old: AppliedConfig, to new: AppliedConfig) {
        configGeneration += 1
        let mark = epoch
        for (name, version) in new.components.sorted(by: { $0.key < $1.key }) where old.components[name] != version {
            components[name] = version
            restarting.insert(name)
            directory.record.component(spec.name, name, version: version, stage: "restarting")
            Task { await self.finishRestart(name, version, mark) }
        }
    }

    private func finishRestart(_ name: String, _ version: String, _ mark: Int) async {
        guard await pause(Self.restartSeconds[name] ?? 10, mark), components[name] == version else { return }
        restarting.remove(name)
        directory.record.component(spec.name, name, version: version, stage: "ready")
    }
}
