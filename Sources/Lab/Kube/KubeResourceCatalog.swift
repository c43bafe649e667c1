import Foundation
import KubeKit

/// One kind the lab's API server serves, with what discovery says about it.
struct ServedResource: Sendable, Equatable {
    var group: String
    var version: String
    var kind: String
    var plural: String
    var namespaced: Bool
    var shortNames: [String] = []
    var subresources: [String] = []

    var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    var singular: String { kind.lowercased() }

    var discovery: JSON {
        var entries: [JSON] = [.object([
            "name": .string(plural), "singularName": .string(singular), "namespaced": .bool(namespaced), "kind": .string(kind),
            "verbs": .array(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"].map(JSON.string)),
            "shortNames": .array(shortNames.map(JSON.string)),
        ])]
        for sub in subresources {
            let subKind = sub == "eviction" ? "Eviction" : kind
            entries.append(.object(["name": .string("\(plural)/\(sub)"), "singularName": "", "namespaced": .bool(namespaced),
                                    "kind": .string(subKind), "verbs": .array((sub == "eviction" ? ["create"] : ["get", "patch", "update"]).map(JSON.string))]))
        }
        return .array(entries)
    }
}

/// The built-in kinds the steps touch (and kubectl asks about), plus whatever CRDs add.
enum KubeResourceCatalog {
    static let builtIn: [ServedResource] = [
        .init(group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, shortNames: ["ns"], subresources: ["status"]),
        .init(group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, shortNames: ["no"], subresources: ["status"]),
        .init(group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, shortNames: ["po"], subresources: ["status", "eviction"]),
        .init(group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true),
        .init(group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, shortNames: ["cm"]),
        .init(group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, shortNames: ["sa"]),
        .init(group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, shortNames: ["svc"], subresources: ["status"]),
        .init(group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: true, shortNames: ["ep"]),
        .init(group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, shortNames: ["ev"]),
        .init(group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, shortNames: ["deploy"], subresources: ["status"]),
        .init(group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, shortNames: ["ds"], subresources: ["status"]),
        .init(group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, shortNames: ["sts"], subresources: ["status"]),
        .init(group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, subresources: ["status"]),
        .init(group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true),
        .init(group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true),
        .init(group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false),
        .init(group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false),
        .init(group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions",
              namespaced: false, shortNames: ["crd", "crds"], subresources: ["status"]),
        .init(group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true, shortNames: ["pdb"], subresources: ["status"]),
        .init(group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration", plural: "validatingwebhookconfigurations", namespaced: false),
        .init(group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations", namespaced: false),
        .init(group: "scheduling.k8s.io", version: "v1", kind: "PriorityClass", plural: "priorityclasses", namespaced: false, shortNames: ["pc"]),
        .init(group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true),
    ]

    /// The kinds an established CRD adds: one per served version.
    static func resources(of crd: JSON) -> [ServedResource] {
        guard let group = crd[path: "spec.group"]?.string, let kind = crd[path: "spec.names.kind"]?.string,
              let plural = crd[path: "spec.names.plural"]?.string else { return [] }
        let namespaced = crd[path: "spec.scope"]?.string != "Cluster"
        let shortNames = crd[path: "spec.names.shortNames"]?.array?.compactMap(\.string) ?? []
        return (crd[path: "spec.versions"]?.array ?? []).compactMap { version in
            guard version["served"]?.bool != false, let name = version["name"]?.string else { return nil }
            let status = version[path: "subresources.status"] != nil ? ["status"] : []
            return ServedResource(group: group, version: name, kind: kind, plural: plural, namespaced: namespaced,
                                  shortNames: shortNames, subresources: status)
        }
    }
}
