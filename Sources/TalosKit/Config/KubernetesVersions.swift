import Foundation
import ProvisionCore

/// The Kubernetes a cluster runs, kept in its state directory (`kubernetes-versions.json`) and
/// recorded when its first config is rendered. Configs are rendered at this version, not at the
/// inventory's: raising `kubernetesVersion` is a request that `provision upgrade` carries out
/// component by component (`up` never does, it names the command), and a GPU worker launched from
/// cron joins at the version the cluster runs. During a rollout `nodes` holds what each node has
/// been moved to, written before the config that moves it is sent, so a re-run resumes there.
public struct KubernetesVersions: Sendable, Codable, Equatable {
    /// The components an upgrade moves, in the order it moves them (reference/day2.md 2.4).
    public enum Component: String, Sendable, Codable, CodingKeyRepresentable, CaseIterable {
        case apiServer, controllerManager, scheduler, proxy, kubelet

        /// The static pod (or service) name: `kube-apiserver`.
        public var processName: String {
            switch self {
            case .apiServer: "kube-apiserver"
            case .controllerManager: "kube-controller-manager"
            case .scheduler: "kube-scheduler"
            case .proxy: "kube-proxy"
            case .kubelet: "kubelet"
            }
        }
    }

    /// The version every node runs once no rollout is under way.
    public var version: String
    /// The version a rollout under way goes to.
    public var target: String?
    /// Per node, the components already moved to `target`.
    public var nodes: [String: [Component: String]] = [:]

    public init(version: String) { self.version = version }

    /// What `component` on `node` is rendered at.
    public func version(of component: Component, node: String) -> String { nodes[node]?[component] ?? version }

    public static func path(_ stateDirectory: String) -> String { stateDirectory + "/kubernetes-versions.json" }

    public static func load(stateDirectory: String) -> KubernetesVersions? {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory)) else { return nil }
        return try? JSONDecoder().decode(KubernetesVersions.self, from: data)
    }

    /// The recorded versions, recorded now from `version` (the inventory's) if there are none yet.
    public static func recorded(stateDirectory: String, version: String) throws -> KubernetesVersions {
        if let existing = load(stateDirectory: stateDirectory) { return existing }
        let fresh = KubernetesVersions(version: version)
        try fresh.save(stateDirectory: stateDirectory)
        return fresh
    }

    public func save(stateDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try PrivateFile.write(Array(try encoder.encode(self)), to: Self.path(stateDirectory))
    }
}

extension ConfigDocuments {
    /// The Kubernetes components a config runs, at the versions of their image tags (a worker's
    /// config names only the kubelet; a disabled kube-proxy has no image).
    public var kubernetesComponents: [KubernetesVersions.Component: String] {
        guard let main = documents.first(where: { $0["version"]?.stringValue == "v1alpha1" }) else { return [:] }
        func tag(_ image: ConfigValue?) -> String? { image?.stringValue?.split(separator: ":").last.map(String.init) }
        var found: [KubernetesVersions.Component: String] = [:]
        found[.kubelet] = tag(main["machine"]?["kubelet"]?["image"])
        found[.apiServer] = tag(main["cluster"]?["apiServer"]?["image"])
        found[.controllerManager] = tag(main["cluster"]?["controllerManager"]?["image"])
        found[.scheduler] = tag(main["cluster"]?["scheduler"]?["image"])
        found[.proxy] = tag(main["cluster"]?["proxy"]?["image"])
        return found
    }
}
