import Foundation
import Yams

/// Multi-document YAML manifests as Kubernetes objects, and the order they must be applied in.
public enum Manifest {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Every non-empty document; a `List` is unpacked into its items. Each object must name its
    /// apiVersion, kind and metadata.name.
    public static func documents(_ yaml: String, source: String = "manifest") throws -> [JSON] {
        var objects: [JSON] = []
        do {
            for (index, node) in try Yams.compose_all(yaml: yaml).enumerated() {
                let object = try json(node)
                if object == .null { continue }
                let items = object.kind.hasSuffix("List") ? object["items"]?.array ?? [] : [object]
                for item in items {
                    guard !item.apiVersion.isEmpty, !item.kind.isEmpty, !item.name.isEmpty else {
                        throw Failure(description: "\(source): document \(index + 1) lacks apiVersion, kind or metadata.name")
                    }
                    objects.append(item)
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(source): not valid YAML: \(error)")
        }
        return objects
    }

    /// The first document of a YAML (or JSON) text, unchecked: a patch body, a values file.
    public static func value(_ yaml: String) throws -> JSON {
        do { return try Yams.compose(yaml: yaml).map(json) ?? .null } catch let failure as Failure { throw failure } catch {
            throw Failure(description: "not valid YAML: \(error)")
        }
    }

    /// Namespaces and CRDs first (everything else may live in or be of them), then the identities and
    /// RBAC workloads run as, then configuration, then workloads, then whatever is left (custom
    /// resources, webhooks), keeping the file's order within each group.
    public static func ordered(_ objects: [JSON]) -> [JSON] {
        let rank: [String: Int] = [
            "Namespace": 0, "CustomResourceDefinition": 1, "PriorityClass": 2, "ServiceAccount": 3, "ClusterRole": 4, "Role": 4,
            "ClusterRoleBinding": 5, "RoleBinding": 5, "Secret": 6, "ConfigMap": 6, "Service": 7, "PodDisruptionBudget": 8,
            "DaemonSet": 9, "Deployment": 9, "StatefulSet": 9, "Job": 10,
        ]
        return objects.enumerated().sorted { a, b in
            let ra = rank[a.element.kind] ?? 11, rb = rank[b.element.kind] ?? 11
            return ra == rb ? a.offset < b.offset : ra < rb
        }.map(\.element)
    }

    /// YAML 1.2 core schema for plain scalars (what Kubernetes' YAML-to-JSON does); quoted scalars
    /// are always strings, so `"true"` in an annotation stays a string.
    static func json(_ node: Node) throws -> JSON {
        switch node {
        case let .scalar(scalar):
            guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
            return plain(scalar.string)
        case let .mapping(mapping):
            var members: [String: JSON] = [:]
            for (key, value) in mapping {
                guard case let .scalar(name) = key else { throw Failure(description: "a mapping key is not a scalar") }
                members[name.string] = try json(value)
            }
            return .object(members)
        case let .sequence(sequence):
            return .array(try sequence.map(json))
        case .alias:
            throw Failure(description: "YAML aliases are not supported in manifests")
        }
    }

    static func plain(_ text: String) -> JSON {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if text.range(of: #"^[-+]?[0-9]+$"#, options: .regularExpression) != nil, let value = Int(text) { return .int(value) }
        if text.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil,
           let value = Double(text) { return .double(value) }
        return .string(text)
    }
}
