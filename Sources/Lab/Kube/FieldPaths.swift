import KubeKit

/// A field of an object as the path of keys to it (keys may contain dots: annotation names do).
typealias FieldPath = [String]

/// Field-level reads and writes for server-side apply. Lists are atomic, as for most Kubernetes
/// lists without merge keys: a list is one field.
enum FieldPaths {
    /// Metadata the server owns; never part of what a manager sets.
    static let serverOwned: Set<FieldPath> = [
        ["apiVersion"], ["kind"], ["status"], ["metadata", "name"], ["metadata", "namespace"], ["metadata", "uid"],
        ["metadata", "resourceVersion"], ["metadata", "generation"], ["metadata", "creationTimestamp"],
        ["metadata", "managedFields"], ["metadata", "deletionTimestamp"], ["metadata", "selfLink"],
    ]

    /// Every leaf path of a configuration (an empty object is a leaf), minus the server's fields.
    static func leaves(_ value: JSON, _ prefix: FieldPath = []) -> Set<FieldPath> {
        if serverOwned.contains(prefix) { return [] }
        guard case let .object(members) = value, !members.isEmpty else { return prefix.isEmpty ? [] : [prefix] }
        var result: Set<FieldPath> = []
        for (key, child) in members { result.formUnion(leaves(child, prefix + [key])) }
        return result
    }

    static func value(_ object: JSON, at path: FieldPath) -> JSON? {
        var current: JSON? = object
        for key in path { current = current?[key] }
        return current
    }

    static func setting(_ object: JSON, _ path: FieldPath, _ value: JSON) -> JSON {
        guard let key = path.first else { return value }
        var members = object.object ?? [:]
        members[key] = setting(members[key] ?? .object([:]), Array(path.dropFirst()), value)
        return .object(members)
    }

    /// Removes a field, and parents left empty by it.
    static func removing(_ object: JSON, _ path: FieldPath) -> JSON {
        guard let key = path.first, var members = object.object else { return object }
        if path.count == 1 {
            members[key] = nil
        } else if let child = members[key] {
            let updated = removing(child, Array(path.dropFirst()))
            members[key] = updated.object?.isEmpty == true ? nil : updated
        }
        return .object(members)
    }

    /// Kubernetes' FieldsV1 form of a set of paths: `{"f:spec": {"f:replicas": {}}}`.
    static func fieldsV1(_ paths: Set<FieldPath>) -> JSON {
        var root: JSON = .object([:])
        for path in paths { root = setting(root, path.map { "f:" + $0 }, .object([:])) }
        return root
    }

    /// What changed between two versions of an object, as leaf paths of either side.
    static func changed(_ old: JSON, _ new: JSON) -> Set<FieldPath> {
        leaves(old).union(leaves(new)).filter { value(old, at: $0) != value(new, at: $0) }
    }

    static func dotted(_ path: FieldPath) -> String { "." + path.joined(separator: ".") }
}
