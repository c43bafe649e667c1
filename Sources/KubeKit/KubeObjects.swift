import Foundation

/// Objects by apiVersion and kind: server-side apply, get, list, delete.
extension KubeClient {
    public func resource(_ apiVersion: String, _ kind: String) async throws -> APIResource {
        try await discovery.resource(apiVersion: apiVersion, kind: kind, client: self)
    }

    /// Server-side apply (`application/apply-patch+yaml`) as `fieldManager`. A field another manager
    /// owns is a 409 conflict unless `force` is set: we take over fields only when asked to.
    @discardableResult
    public func apply(_ object: JSON, fieldManager: String = "provision", force: Bool = false) async throws -> JSON {
        let resource = try await resource(object.apiVersion, object.kind)
        let namespace = resource.namespaced ? (object.namespace ?? config.namespace) : nil
        var body = object
        if let namespace { body.set("metadata.namespace", .string(namespace)) }
        return try await send(.PATCH, resource.path(namespace: namespace, name: object.name),
                              query: [("fieldManager", fieldManager), ("force", force ? "true" : "false")],
                              body: body, contentType: "application/apply-patch+yaml")
    }

    /// Applies a manifest's objects in dependency order; after CRDs, waits until they are Established
    /// so the custom resources that follow are served.
    public func apply(manifest objects: [JSON], fieldManager: String = "provision", force: Bool = false,
                      timeout: Duration = .seconds(120)) async throws {
        var crds: [String] = []
        for object in Manifest.ordered(objects) {
            if object.kind != "CustomResourceDefinition", !crds.isEmpty {
                for name in crds { try await waitForEstablished(crd: name, timeout: timeout) }
                crds = []
            }
            try await apply(object, fieldManager: fieldManager, force: force)
            if object.kind == "CustomResourceDefinition" { crds.append(object.name) }
        }
        for name in crds { try await waitForEstablished(crd: name, timeout: timeout) }
    }

    /// The object, or nil when it does not exist.
    public func get(_ apiVersion: String, _ kind: String, name: String, namespace: String? = nil) async throws -> JSON? {
        let resource = try await resource(apiVersion, kind)
        let namespace = resource.namespaced ? namespace ?? config.namespace : nil
        let key = Self.lookKey(resource, namespace: namespace, name: name, labelSelector: nil)
        do {
            let object = try await send(.GET, resource.path(namespace: namespace, name: name))
            noteSeen(key, object[path: "metadata.resourceVersion"]?.string.map(SeenVersion.at))
            return object
        } catch let error as KubeError where error.notFound {
            noteSeen(key, .absent)
            return nil
        }
    }

    /// Objects of a kind, in one namespace or (nil) all, filtered by label and field selectors.
    public func list(_ apiVersion: String, _ kind: String, namespace: String? = nil, labelSelector: String? = nil,
                     fieldSelector: String? = nil) async throws -> [JSON] {
        let resource = try await resource(apiVersion, kind)
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        let list = try await send(.GET, resource.path(namespace: namespace), query: query)
        if fieldSelector == nil {
            let namespace = resource.namespaced ? namespace : nil
            noteSeen(Self.lookKey(resource, namespace: namespace, name: nil, labelSelector: labelSelector),
                     list[path: "metadata.resourceVersion"]?.string.map(SeenVersion.at))
        }
        return list["items"]?.array ?? []
    }

    /// Deletes the object; false when it was already gone.
    @discardableResult
    public func delete(_ apiVersion: String, _ kind: String, name: String, namespace: String? = nil) async throws -> Bool {
        let resource = try await resource(apiVersion, kind)
        do {
            _ = try await send(.DELETE, resource.path(namespace: resource.namespaced ? namespace ?? config.namespace : nil, name: name),
                               body: .object(["kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"]))
            return true
        } catch let error as KubeError where error.notFound {
            return false
        }
    }
}
