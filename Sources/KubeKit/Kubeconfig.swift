import Foundation

/// The parts of a kubeconfig a client needs: where the API server is, the CA that signs it, and the
/// client certificate and key (or a bearer token) of the selected context.
public struct Kubeconfig: Sendable {
    public var server: URL
    public var caPEM: String
    public var certificatePEM: String?
    public var keyPEM: String?
    public var token: String?
    public var namespace: String
    public var context: String

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func load(path: String, context: String? = nil) throws -> Kubeconfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(description: "cannot read kubeconfig \(path)")
        }
        return try parse(text, context: context, source: path)
    }

    public static func parse(_ text: String, context wanted: String? = nil, source: String = "kubeconfig") throws -> Kubeconfig {
        let root: JSON
        do { root = try Manifest.value(text) } catch {
            throw Failure(description: "\(source) is not valid YAML: \(error)")
        }
        func named(_ list: String, _ name: String) -> JSON? {
            root[list]?.array?.first { $0["name"]?.string == name }
        }
        guard let contextName = wanted ?? root["current-context"]?.string, !contextName.isEmpty else {
            throw Failure(description: "\(source) has no current-context; pass a context name")
        }
        guard let context = named("contexts", contextName)?["context"] else {
            let known = root["contexts"]?.array?.compactMap { $0["name"]?.string } ?? []
            throw Failure(description: "\(source) has no context \(contextName); it has: \(known.joined(separator: ", "))")
        }
        guard let clusterName = context["cluster"]?.string, let cluster = named("clusters", clusterName)?["cluster"],
              let server = cluster["server"]?.string.flatMap(URL.init(string:)) else {
            throw Failure(description: "\(source): context \(contextName) names no cluster with a server URL")
        }
        guard let caData = cluster["certificate-authority-data"]?.string, let ca = decode(caData) else {
            throw Failure(description: "\(source): cluster \(clusterName) needs certificate-authority-data (the cluster CA, base64)")
        }
        let user = context["user"]?.string.flatMap { named("users", $0)?["user"] } ?? .object([:])
        let config = Kubeconfig(server: server, caPEM: ca,
                                certificatePEM: user["client-certificate-data"]?.string.flatMap(decode),
                                keyPEM: user["client-key-data"]?.string.flatMap(decode), token: user["token"]?.string,
                                namespace: context["namespace"]?.string ?? "default", context: contextName)
        guard (config.certificatePEM != nil && config.keyPEM != nil) || config.token != nil else {
            throw Failure(description: "\(source): user of context \(contextName) has neither a client certificate and key nor a token")
        }
        return config
    }

    static func decode(_ base64: String) -> String? {
        Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)).map { String(decoding: $0, as: UTF8.self) }
    }
}
