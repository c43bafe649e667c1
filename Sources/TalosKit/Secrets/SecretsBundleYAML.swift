import Foundation
import ProvisionCore
import X509

extension SecretsBundle {
    /// `secrets.yaml` as talosctl writes it (go-yaml, 4-space indentation, lowercase keys).
    public var yaml: String {
        var lines = ["cluster:", "    id: \(clusterID)", "    secret: \(clusterSecret)", "secrets:",
                     "    bootstraptoken: \(bootstrapToken)", "    secretboxencryptionsecret: \(secretboxEncryptionSecret)"]
        if let aescbc = aescbcEncryptionSecret { lines.append("    aescbcencryptionsecret: \(aescbc)") }
        lines += ["trustdinfo:", "    token: \(trustdToken)", "certs:"]
        for (name, pair) in [("etcd", etcd), ("k8s", k8s), ("k8saggregator", k8sAggregator)] {
            lines += ["    \(name):", "        crt: \(pair.crt)", "        key: \(pair.key)"]
        }
        lines += ["    k8sserviceaccount:", "        key: \(k8sServiceAccountKey)", "    os:", "        crt: \(os.crt)", "        key: \(os.key)"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a talosctl/talhelper `secrets.yaml` strictly, checking that every certificate and key
    /// decodes, and naming the field (never its value) when one does not.
    public static func parse(text: String, file: String) throws(InputError) -> SecretsBundle {
        try parse(root: YAMLLoader().load(text: text, file: file))
    }

    /// Reads a file with the loader's guards (size, binary content, nesting) first.
    public static func load(path: String) throws(InputError) -> SecretsBundle {
        try parse(root: YAMLLoader().load(path: path))
    }

    static func parse(root: YAMLNode) throws(InputError) -> SecretsBundle {
        let collector = DiagnosticCollector()
        guard let top = MappingReader(root, path: "", collector: collector) else { throw InputError(collector.sorted) }
        func field(_ reader: MappingReader?, _ key: String) -> Located<String>? {
            reader?.string(key, required: true, hint: "this is not a complete talosctl secrets.yaml")
        }
        let cluster = top.mapping("cluster", required: true)
        let id = field(cluster, "id"), secret = field(cluster, "secret")
        cluster?.finish()
        let secrets = top.mapping("secrets", required: true)
        let bootstrap = field(secrets, "bootstraptoken"), secretbox = field(secrets, "secretboxencryptionsecret")
        let aescbc = secrets?.string("aescbcencryptionsecret")
        secrets?.finish()
        let trustd = top.mapping("trustdinfo", required: true)
        let trustdToken = field(trustd, "token")
        trustd?.finish()
        let certs = top.mapping("certs", required: true)
        func pair(_ name: String, organization: String?) -> Pair? {
            guard let reader = certs?.mapping(name, required: true) else { return nil }
            let crt = field(reader, "crt"), key = field(reader, "key")
            reader.finish()
            guard let crt, let key else { return nil }
            check(crt, at: "certs.\(name).crt", collector: collector) { try Certificate(pemEncoded: $0) }
            check(key, at: "certs.\(name).key", collector: collector) { try SigningKey(pem: $0) }
            return Pair(crt: crt.value, key: key.value)
        }
        let etcd = pair("etcd", organization: "etcd"), k8s = pair("k8s", organization: "kubernetes")
        let aggregator = pair("k8saggregator", organization: nil), os = pair("os", organization: "talos")
        let serviceAccount = certs?.mapping("k8sserviceaccount", required: true)
        let saKey = field(serviceAccount, "key")
        serviceAccount?.finish()
        if let saKey { check(saKey, at: "certs.k8sserviceaccount.key", collector: collector) { try SigningKey(pem: $0) } }
        certs?.finish()
        top.finish()
        for token in [bootstrap, trustdToken].compactMap({ $0 }) where !isToken(token.value) {
            collector.error("secrets.token", at: token.location, "token is not of the form [a-z0-9]{6}.[a-z0-9]{16}",
                            fix: "regenerate the bundle, or fix the token")
        }
        guard !collector.hasErrors, let id, let secret, let bootstrap, let secretbox, let trustdToken, let etcd, let k8s,
              let aggregator, let os, let saKey else { throw InputError(collector.sorted) }
        return SecretsBundle(clusterID: id.value, clusterSecret: secret.value, bootstrapToken: bootstrap.value,
                             secretboxEncryptionSecret: secretbox.value, aescbcEncryptionSecret: aescbc?.value,
                             trustdToken: trustdToken.value, etcd: etcd, k8s: k8s, k8sAggregator: aggregator,
                             k8sServiceAccountKey: saKey.value, os: os)
    }

    static func check(_ value: Located<String>, at path: String, collector: DiagnosticCollector, _ parse: (String) throws -> Any) {
        do {
            _ = try parse(try decode(value.value))
        } catch {
            collector.error("secrets.invalid", at: value.location, "`\(path)` does not hold a usable PEM value (\(Self.reason(error)))",
                            fix: "restore this field from the original secrets.yaml; the bundle may be truncated")
        }
    }

    /// Error text without any of the value itself.
    static func reason(_ error: any Error) -> String {
        if let bundle = error as? BundleError { return bundle.description }
        if let key = error as? SigningKey.KeyError { return key.description }
        return "it could not be decoded"
    }

    static func isToken(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let ok: (Substring) -> Bool = { $0.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) } }
        return parts.count == 2 && parts[0].count == 6 && parts[1].count == 16 && ok(parts[0]) && ok(parts[1])
    }
}
