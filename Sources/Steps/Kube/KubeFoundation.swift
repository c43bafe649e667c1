import Foundation
import KubeKit
import ProvisionCore

/// `kube.foundation`: the cluster's secrets foundation. For `onepassword`: the Connect credentials
/// Secret (the credentials file base64-encoded *inside* the value, as Connect reads OP_SESSION) and
/// the token Secret, External Secrets and 1Password Connect, then - only once ESO's CRDs are
/// Established and its webhook has endpoints - the ClusterSecretStore, which must report Ready.
/// For `sops-age`: the age key Secret in the GitOps namespace. Inputs are checked before anything
/// is applied; secret values never reach a log line.
public struct KubeFoundation: StepKind {
    public let info = StepKindInfo(name: "kube.foundation", summary: "install the secrets foundation (1Password Connect + External Secrets, or SOPS/age)",
                                   estimate: .seconds(90), scope: .cluster, defaultTimeout: .seconds(900))
    static let storeName = "onepassword"

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let spec = context.inventory.foundation
        let credentials = try await FoundationCredentials.load(spec, context: context)
        let kube = try KubeAccess.from(context).kube()
        for secret in Self.secrets(spec, credentials) {
            let existing = try await kube.get("v1", "Secret", name: secret.name, namespace: secret.namespace)
            if existing?["data"] != secret["data"] { return .pending("Secret \(secret.namespace ?? "")/\(secret.name) is missing or differs") }
        }
        guard spec.kind.value == .onepassword else { return .satisfied(["kind": spec.kind.value.rawValue]) }
        if let drift = try await Self.settingsDrift(spec, kube) {
            context.plan(PlannedChange(node: nil, resource: "foundation", action: "update", reason: drift), step: step)
            return .pending(drift)
        }
        let store = try? await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: Self.storeName)
        guard store?.condition("Ready") == "True" else { return .pending("ClusterSecretStore \(Self.storeName) is not Ready") }
        return .satisfied(["store": Self.storeName])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let spec = context.inventory.foundation
        let credentials = try await FoundationCredentials.load(spec, context: context)
        let kube = try KubeAccess.from(context).kube()
        let interval = TalosAccess.from(context).pollInterval
        let namespace = spec.namespace.value
        if spec.kind.value == .sopsAge {
            try await kube.apply(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]])
            for secret in Self.secrets(spec, credentials) { try await kube.apply(secret, force: true) }
            context.log("age key Secret \(namespace)/sops-age is in place", step: step)
            return ["kind": "sops-age"]
        }
        let eso = spec.externalSecretsVersion?.value ?? "v0.19.2", connect = spec.connectVersion?.value ?? "1.7.3"
        let replacements = ["NAMESPACE": namespace, "ESO_VERSION": eso, "CONNECT_VERSION": connect]
        try await kube.apply(manifest: try Self.manifest("external-secrets", replacements), timeout: .seconds(300))
        for secret in Self.secrets(spec, credentials) { try await kube.apply(secret, force: true) }
        try await kube.apply(manifest: try Self.manifest("onepassword-connect", replacements))
        context.log("External Secrets \(eso) and 1Password Connect \(connect) applied in \(namespace)", step: step)

        // The store is validated by ESO's webhook: applying it before the webhook answers fails, so wait.
        try await kube.wait(for: "the External Secrets webhook", timeout: .seconds(600), interval: interval) {
            if let pending = try await kube.rolloutPending("Deployment", name: "external-secrets-webhook", namespace: namespace) { return pending }
            return try await kube.endpointsReady(service: "external-secrets-webhook", namespace: namespace) ? nil : "the webhook Service has no ready endpoints"
        }
        for name in ["external-secrets", "onepassword-connect"] {
            try await kube.wait(for: "\(name) to roll out", timeout: .seconds(600), interval: interval,
                                watching: .object("apps/v1", "Deployment", name: name, namespace: namespace)) {
                try await kube.rolloutPending("Deployment", name: name, namespace: namespace)
            }
        }
        try await kube.apply(Self.clusterSecretStore(spec))
        try await kube.wait(for: "ClusterSecretStore \(Self.storeName) to be Ready", timeout: .seconds(300), interval: interval,
                            watching: .object("external-secrets.io/v1", "ClusterSecretStore", name: Self.storeName)) {
            let store = try await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: Self.storeName)
            if store?.condition("Ready") == "True" { return nil }
            let message = store?[path: "status.conditions"]?.array?.first?["message"]?.string
            return message.map { "not Ready: \($0)" } ?? "no status yet"
        }
        context.log("ClusterSecretStore \(Self.storeName) is Ready (vault \(spec.vault?.value ?? ""))", step: step)
        return ["store": Self.storeName, "externalSecrets": eso, "connect": connect]
    }

    static func manifest(_ name: String, _ replacements: [String: String]) throws -> [JSON] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "yaml", subdirectory: "Manifests"),
              var text = try? String(contentsOf: url, encoding: .utf8) else {
            throw StepError.permanent("the \(name) manifest is missing from this build")
        }
        for (key, value) in replacements { text = text.replacingOccurrences(of: "${\(key)}", with: value) }
        return try Manifest.documents(text, source: "\(name).yaml")
    }

    /// The Secrets the foundation owns, with their data exactly as stored (base64).
    static func secrets(_ spec: FoundationSpec, _ credentials: FoundationCredentials) -> [JSON] {
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        func secret(_ name: String, _ data: [String: JSON]) -> JSON {
            ["apiVersion": "v1", "kind": "Secret", "type": "Opaque",
             "metadata": ["name": .string(name), "namespace": .string(spec.namespace.value), "labels": ["app.kubernetes.io/managed-by": "provision"]],
             "data": .object(data)]
        }
        switch spec.kind.value {
        case .onepassword:
            // Connect decodes OP_SESSION from base64, and the Secret's data is base64 again: twice.
            return [secret("onepassword-connect-credentials", ["1password-credentials.json": .string(b64(b64(credentials.connectCredentials)))]),
                    secret("onepassword-connect-token", ["token": .string(b64(credentials.connectToken))])]
        case .sopsAge:
            return [secret("sops-age", ["age.agekey": .string(b64(credentials.ageKey))])]
        case .none:
            return []
        }
    }

    /// The inventory's foundation settings against what runs: the store's vault and Connect host,
    /// and the External Secrets and Connect versions of their Deployments. Nil when they agree.
    static func settingsDrift(_ spec: FoundationSpec, _ kube: KubeClient) async throws -> String? {
        let namespace = spec.namespace.value
        var changes: [String] = []
        if let store = try? await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: storeName) {
            let want = clusterSecretStore(spec)[path: "spec.provider.onepassword"], have = store[path: "spec.provider.onepassword"]
            if have?["vaults"] != want?["vaults"] {
                changes.append("store vault \(have?["vaults"]?.object?.keys.sorted().joined(separator: ",") ?? "none") -> \(spec.vault?.value ?? "")")
            }
            if have?["connectHost"] != want?["connectHost"] { changes.append("store Connect host -> \(want?["connectHost"]?.string ?? "")") }
        }
        let versions = [("external-secrets", "ghcr.io/external-secrets/external-secrets:", spec.externalSecretsVersion?.value ?? "v0.19.2"),
                        ("onepassword-connect", "1password/connect-api:", spec.connectVersion?.value ?? "1.7.3")]
        for (name, image, version) in versions {
            guard let deployment = try await kube.get("apps/v1", "Deployment", name: name, namespace: namespace) else { continue }
            let running = deployment[path: "spec.template.spec.containers"]?.array?.compactMap { $0["image"]?.string }.first { $0.hasPrefix(image) }
            if let running, running != image + version { changes.append("\(name) \(running.dropFirst(image.count)) -> \(version)") }
        }
        return changes.isEmpty ? nil : "foundation settings changed: " + changes.joined(separator: "; ")
    }

    static func clusterSecretStore(_ spec: FoundationSpec) -> JSON {
        let namespace = spec.namespace.value
        return ["apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": ["name": .string(storeName)],
                "spec": ["provider": ["onepassword": [
                    "connectHost": .string("http://onepassword-connect.\(namespace):8080"),
                    "vaults": .object([spec.vault?.value ?? "": 1]),
                    "auth": ["secretRef": ["connectTokenSecretRef": ["name": "onepassword-connect-token", "key": "token", "namespace": .string(namespace)]]],
                ]]]]
    }
}
