import Foundation
import KubeKit

/// `kubectl get` asks for server-side Tables; these are the columns kube-apiserver prints for the
/// kinds the lab serves (the rest get Name and Age).
enum KubeTables {
    static func table(_ resource: ServedResource, _ objects: [JSON]) -> JSON {
        let columns = self.columns(resource.kind)
        let rows: [JSON] = objects.map { object in
            var metadata = object["metadata"] ?? .object([:])
            metadata["managedFields"] = nil
            return .object(["cells": .array(columns.map { $0.1(object) }),
                            "object": .object(["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata])])
        }
        return .object(["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": .object([:]),
                        "columnDefinitions": .array(columns.map { column in
                            .object(["name": .string(column.0), "type": "string", "format": column.0 == "Name" ? "name" : "",
                                     "description": "", "priority": 0])
                        }), "rows": .array(rows)])
    }

    typealias Column = (String, @Sendable (JSON) -> JSON)

    static func columns(_ kind: String) -> [Column] {
        let name: Column = ("Name", { .string($0.name) })
        let age: Column = ("Age", { .string(Self.age($0[path: "metadata.creationTimestamp"]?.string)) })
        func int(_ path: String) -> @Sendable (JSON) -> JSON { { .int($0[path: path]?.int ?? 0) } }
        switch kind {
        case "Node":
            return [name, ("Status", { node in
                var status = node.condition("Ready") == "True" ? "Ready" : "NotReady"
                if node[path: "spec.unschedulable"]?.bool == true { status += ",SchedulingDisabled" }
                return .string(status)
            }), ("Roles", { node in
                let roles = (node[path: "metadata.labels"]?.object ?? [:]).keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }
                    .map { String($0.dropFirst("node-role.kubernetes.io/".count)) }.sorted()
                return .string(roles.isEmpty ? "<none>" : roles.joined(separator: ","))
            }), age, ("Version", { .string($0[path: "status.nodeInfo.kubeletVersion"]?.string ?? "") })]
        case "DaemonSet":
            return [name, ("Desired", int("status.desiredNumberScheduled")), ("Current", int("status.currentNumberScheduled")),
                    ("Ready", int("status.numberReady")), ("Up-to-date", int("status.updatedNumberScheduled")),
                    ("Available", int("status.numberAvailable")), age]
        case "Deployment":
            return [name, ("Ready", { .string("\($0[path: "status.readyReplicas"]?.int ?? 0)/\($0[path: "spec.replicas"]?.int ?? 1)") }),
                    ("Up-to-date", int("status.updatedReplicas")), ("Available", int("status.availableReplicas")), age]
        case "Job":
            return [name, ("Status", { .string($0.condition("Complete") == "True" ? "Complete" : "Running") }),
                    ("Completions", { .string("\($0[path: "status.succeeded"]?.int ?? 0)/\($0[path: "spec.completions"]?.int ?? 1)") }), age]
        case "Namespace":
            return [name, ("Status", { .string($0[path: "status.phase"]?.string ?? "Active") }), age]
        case "Secret":
            return [name, ("Type", { .string($0["type"]?.string ?? "Opaque") }), ("Data", { .int($0["data"]?.object?.count ?? 0) }), age]
        default:
            return [name, age]
        }
    }

    /// kubectl's short age: 42s, 5m, 3h, 2d.
    static func age(_ timestamp: String?) -> String {
        guard let timestamp, let date = ISO8601DateFormatter().date(from: timestamp) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(date)))
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86400)d"
    }
}
