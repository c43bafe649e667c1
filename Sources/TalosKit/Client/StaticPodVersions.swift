import Foundation

/// The versions Talos stamps on a control plane's static pods, read from the COSI resources they
/// come from (talos v1.13.9 `control_plane_static_pod.go`): each pod's `talos.dev/config-version`
/// is its config resource's version (`APIServerConfigs`, `ControllerManagerConfigs`,
/// `SchedulerConfigs` in namespace `controlplane`), every pod's `talos.dev/secrets-version` is the
/// `static-pods` SecretStatus's, and the apiserver's `talos.dev/config-file-version` is the
/// `static-pods` ConfigStatus's spec version (the admission, audit, authorization and scheduler
/// configs' versions joined: a scheduler change re-renders the apiserver too,
/// `render_config_static_pods.go`). A live change that moves one of them re-renders those pods:
/// `talosctl upgrade-k8s` watches the config-version; provision watches all three.
public struct StaticPodVersions: Sendable, Equatable {
    /// Resource key (`kube-apiserver`, ..., `secrets`) -> COSI version; absent when not there (a worker).
    public var versions: [String: String]

    public static let configTypes = [
        "kube-apiserver": "APIServerConfigs.kubernetes.talos.dev",
        "kube-controller-manager": "ControllerManagerConfigs.kubernetes.talos.dev",
        "kube-scheduler": "SchedulerConfigs.kubernetes.talos.dev",
    ]
    public static let secretsType = "SecretStatuses.kubernetes.talos.dev"
    public static let configFilesType = "ConfigStatuses.kubernetes.talos.dev"

    /// What changed from `before` to `self`: per pod, the annotation it must carry and its value.
    public func waits(since before: StaticPodVersions) -> [(pod: String, annotation: String, value: String)] {
        var waits: [(String, String, String)] = []
        for component in Self.configTypes.keys.sorted() {
            if let now = versions[component], now != before.versions[component] { waits.append((component, "talos.dev/config-version", now)) }
        }
        if let now = versions["secrets"], now != before.versions["secrets"] {
            for component in Self.configTypes.keys.sorted() { waits.append((component, "talos.dev/secrets-version", now)) }
        }
        if let now = versions["config-files"], now != before.versions["config-files"] {
            waits.append(("kube-apiserver", "talos.dev/config-file-version", now))
        }
        return waits
    }
}

extension TalosClient {
    /// The control plane's static pod versions now.
    public func staticPodVersions() async throws -> StaticPodVersions {
        var versions: [String: String] = [:]
        for (component, type) in StaticPodVersions.configTypes {
            versions[component] = try await resourceVersion(namespace: "controlplane", type: type, id: component)
        }
        versions["secrets"] = try await resourceVersion(namespace: "controlplane", type: StaticPodVersions.secretsType, id: "static-pods")
        versions["config-files"] = try await configFilesVersion()
        return StaticPodVersions(versions: versions)
    }

    /// The `static-pods` ConfigStatus's spec `version`: what the apiserver's config-file-version says.
    func configFilesVersion() async throws -> String? {
        guard let resource = try await resource(namespace: "controlplane", type: StaticPodVersions.configFilesType, id: "static-pods") else { return nil }
        return try ResourceSpec(resource.spec.yamlSpec, kind: "ConfigStatus").text("version")
    }

    /// One COSI resource's version, nil when it does not exist.
    public func resourceVersion(namespace: String, type: String, id: String) async throws -> String? {
        try await resource(namespace: namespace, type: type, id: id)?.metadata.version
    }
}
