import KubeKit

/// Just enough OpenAPI v3 for kubectl: an index of group versions, and per group version the PATCH
/// operations tagged with their kind and the `fieldValidation` query parameter, which is how
/// kubectl learns that the server validates fields itself (so it sends `fieldValidation=Strict`
/// instead of downloading schemas to validate client-side).
enum KubeOpenAPI {
    static func key(_ resource: ServedResource) -> String { resource.group.isEmpty ? "api/\(resource.version)" : "apis/\(resource.group)/\(resource.version)" }

    static func index(_ served: [ServedResource]) -> JSON {
        var paths: [String: JSON] = [:]
        for resource in served { paths[key(resource)] = ["serverRelativeURL": .string("/openapi/v3/\(key(resource))")] }
        return ["paths": .object(paths)]
    }

    static func document(_ groupVersion: String, _ served: [ServedResource]) -> JSON {
        var paths: [String: JSON] = [:]
        let parameter: JSON = ["name": "fieldValidation", "in": "query", "schema": ["type": "string"]]
        for resource in served where resource.groupVersion == groupVersion {
            let prefix = "/" + key(resource) + (resource.namespaced ? "/namespaces/{namespace}" : "")
            let kind: JSON = ["group": .string(resource.group), "version": .string(resource.version), "kind": .string(resource.kind)]
            paths["\(prefix)/\(resource.plural)/{name}"] = ["patch": [
                "x-kubernetes-group-version-kind": kind, "x-kubernetes-action": "patch",
                "parameters": [parameter], "responses": ["200": ["description": "OK"]],
            ]]
        }
        return ["openapi": "3.0.0", "info": ["title": "Kubernetes", "version": "lab"], "paths": .object(paths)]
    }
}
