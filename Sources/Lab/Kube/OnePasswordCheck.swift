import Foundation
import KubeKit

/// What External Secrets' 1Password provider would find wrong with a ClusterSecretStore, checked on
/// the objects the foundation step made: Connect reachable through its Service, the token Secret,
/// and Connect's credentials Secret holding the credentials file base64-encoded *inside* the value
/// (Connect reads OP_SESSION as base64, and a Secret's data is base64 again).
enum OnePasswordCheck {
    static let credentialKeys: Set<String> = ["verifier", "encCredentials", "version", "deviceUuid", "uniqueKey"]

    static func problem(with secretStore: JSON, store: KubeStore) async -> String? {
        guard let provider = secretStore[path: "spec.provider.onepassword"] else { return "the lab validates only onepassword providers" }
        guard let host = provider["connectHost"]?.string, let url = URL(string: host), let hostname = url.host else {
            return "spec.provider.onepassword.connectHost is not a URL"
        }
        let labels = hostname.split(separator: ".").map(String.init)
        let service = labels[0], namespace = labels.count > 1 ? labels[1] : "default"
        let endpoints = try? await store.get(KubeResourceCatalog.builtIn.first { $0.kind == "Endpoints" }!, namespace: namespace, name: service)
        guard endpoints?["subsets"]?.array?.contains(where: { !($0["addresses"]?.array ?? []).isEmpty }) == true else {
            return "1Password Connect at \(host) is not reachable: service \(namespace)/\(service) has no ready endpoints"
        }
        let secrets = KubeResourceCatalog.builtIn.first { $0.kind == "Secret" }!
        guard let reference = provider[path: "auth.secretRef.connectTokenSecretRef"], let tokenName = reference["name"]?.string,
              let tokenKey = reference["key"]?.string else {
            return "spec.provider.onepassword.auth.secretRef.connectTokenSecretRef needs name and key"
        }
        let tokenNamespace = reference["namespace"]?.string ?? "default"
        guard let token = try? await store.get(secrets, namespace: tokenNamespace, name: tokenName),
              let value = token["data"]?[tokenKey]?.string, let decoded = Data(base64Encoded: value), !decoded.isEmpty else {
            return "the Connect token Secret \(tokenNamespace)/\(tokenName) has no key \(tokenKey)"
        }
        guard let credentials = try? await store.get(secrets, namespace: namespace, name: "onepassword-connect-credentials"),
              let outer = credentials["data"]?["1password-credentials.json"]?.string, let once = Data(base64Encoded: outer) else {
            return "Secret \(namespace)/onepassword-connect-credentials with key 1password-credentials.json is missing"
        }
        let inner = String(decoding: once, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let twice = Data(base64Encoded: inner), let file = try? JSON.parse(twice), let keys = file.object.map({ Set($0.keys) }) else {
            return "onepassword-connect-credentials holds the credentials file encoded once; Connect expects it base64-encoded inside the Secret value"
        }
        guard credentialKeys.isSubset(of: keys) else {
            return "the Connect credentials file lacks \(credentialKeys.subtracting(keys).sorted().joined(separator: ", "))"
        }
        return nil
    }
}
