/// Talos' strategic-merge patching (reference §7.5): maps merge recursively, scalars override, lists
/// append, except the lists Talos replaces; `$patch: delete` removes a key (or a whole document).
public enum StrategicMerge {
    /// Paths whose lists are replaced, not appended.
    static let replacedLists: Set<String> = ["cluster.network.podSubnets", "cluster.network.serviceSubnets", "cluster.apiServer.auditPolicy"]

    public struct PatchError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "`\(path)`: \(reason)" }
    }

    public static func merge(_ base: ConfigValue, _ patch: ConfigValue, path: String = "") throws(PatchError) -> ConfigValue {
        guard case let .map(patchEntries) = patch else { return patch }
        guard case var .map(entries) = base else {
            if case .null = base { return try merge(.map([]), patch, path: path) }
            throw PatchError(path: path.isEmpty ? "(document)" : path, reason: "the patch gives a mapping where the config has a value of another type")
        }
        for entry in patchEntries where entry.key != "$patch" {
            let childPath = path.isEmpty ? entry.key : "\(path).\(entry.key)"
            let index = entries.firstIndex { $0.key == entry.key }
            if case let .map(inner) = entry.value, inner.contains(where: { $0.key == "$patch" && $0.value == .string("delete") }) {
                guard let index else {
                    throw PatchError(path: childPath, reason: "`$patch: delete` targets a key that is not in the config")
                }
                entries.remove(at: index)
                continue
            }
            guard let index else {
                entries.append(entry)
                continue
            }
            let current = entries[index].value
            switch (current, entry.value) {
            case (.map, .map):
                entries[index].value = try merge(current, entry.value, path: childPath)
            case let (.list(old), .list(new)):
                entries[index].value = replacedLists.contains(childPath) ? .list(new) : .list(old + new)
            default:
                entries[index].value = entry.value
            }
        }
        return .map(entries)
    }
}
