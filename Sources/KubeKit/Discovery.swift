import Foundation

/// One kind the API server serves: where its objects live and whether they are namespaced.
public struct APIResource: Sendable, Equatable {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var namespaced: Bool

    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    var prefix: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }

    /// The collection path (in `namespace` for namespaced kinds), or one object's when `name` is given.
    public func path(namespace: String?, name: String? = nil) -> String {
        var path = prefix
        if namespaced, let namespace { path += "/namespaces/\(namespace)" }
        path += "/\(plural)"
        if let name { path += "/\(name)" }
        return path
    }
}

/// apiVersion + kind -> resource, read from the server's discovery documents (`/api/v1`,
/// `/apis/GROUP/VERSION`) and cached per group version. A kind a CRD just added is found by asking
/// again: a miss always re-reads that group version once.
public actor Discovery {
    private var known: [String: [String: APIResource]] = [:]

    public init() {}

    public func resource(apiVersion: String, kind: String, client: KubeClient) async throws -> APIResource {
        if let found = known[apiVersion]?[kind] { return found }
        let parts = apiVersion.split(separator: "/").map(String.init)
        let (group, version) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts.first ?? "v1")
        let path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        let list: JSON
        do { list = try await client.send(.GET, path) } catch let error as KubeError where error.notFound {
            throw KubeError(status: 404, reason: "NotFound", message: "the server does not serve \(apiVersion) (is its CRD installed?)", operation: "discover \(kind)")
        }
        var table: [String: APIResource] = [:]
        for item in list["resources"]?.array ?? [] {
            guard let name = item["name"]?.string, !name.contains("/"), let itemKind = item["kind"]?.string else { continue }
            table[itemKind] = APIResource(group: group, version: version, kind: itemKind, plural: name, namespaced: item["namespaced"]?.bool ?? false)
        }
        known[apiVersion] = table
        guard let found = table[kind] else {
            throw KubeError(status: 404, reason: "NotFound", message: "\(apiVersion) has no kind \(kind)", operation: "discover \(kind)")
        }
        return found
    }
}
