import Foundation
import ProvisionCore

/// A machine config as a list of YAML documents, compared and shown the way drift is judged: map
/// keys sorted and documents in a fixed order, so a node's stored config (re-encoded by Talos, in
/// its own key order) and our rendered one are equal exactly when they mean the same.
public struct ConfigDocuments: Sendable, Equatable {
    public var documents: [ConfigValue]

    public init(documents: [ConfigValue]) {
        self.documents = documents
    }

    /// Parses multi-document YAML (`---` separated); empty documents are skipped.
    public init(yaml text: String, file: String = "machine config") throws {
        var documents: [ConfigValue] = []
        let parts = text.components(separatedBy: "\n---").map { $0.hasPrefix("\n") ? String($0.dropFirst()) : $0 }
        for (index, part) in parts.enumerated() where !part.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            let body = part.hasPrefix("---\n") ? String(part.dropFirst(4)) : part
            documents.append(ConfigValue(try YAMLLoader().load(text: body, file: "\(file) document \(index + 1)")))
        }
        self.documents = documents
    }

    /// The v1alpha1 document first, then the others by kind and name; every map's keys sorted.
    public var canonical: ConfigDocuments {
        let sorted = documents.map(\.sortedKeys).sorted { Self.order($0) < Self.order($1) }
        return ConfigDocuments(documents: sorted)
    }

    public var yaml: String { documents.map(\.yaml).joined(separator: "---\n") }

    /// `machine.install.image` of the v1alpha1 document: the installer, hence the Talos version.
    public var installImage: String? {
        get { documents.first { $0["version"]?.stringValue == "v1alpha1" }?["machine"]?["install"]?["image"]?.stringValue }
        set {
            guard let newValue, let index = documents.firstIndex(where: { $0["version"]?.stringValue == "v1alpha1" }) else { return }
            documents[index] = documents[index].setting(["machine", "install", "image"], .string(newValue))
        }
    }

    /// The config with every secret value replaced: what a plan or a log may show.
    public var redacted: ConfigDocuments { ConfigDocuments(documents: documents.map { $0.redactingSecrets() }) }

    /// A unified diff from `old` to `self`, both canonical and redacted; nil when they are equal.
    public func diff(from old: ConfigDocuments?, oldName: String = "active", newName: String = "desired") -> String? {
        TextDiff.unified(old?.canonical.redacted.yaml ?? "", canonical.redacted.yaml, oldName: oldName, newName: newName)
    }

    static func order(_ document: ConfigValue) -> String {
        if document["version"]?.stringValue == "v1alpha1" { return "" }
        return (document["kind"]?.stringValue ?? "~") + "/" + (document["name"]?.stringValue ?? "")
    }
}

extension ConfigValue {
    /// The value with `path` set (maps along the path are created when missing).
    func setting(_ path: [String], _ value: ConfigValue) -> ConfigValue {
        guard let key = path.first else { return value }
        guard case var .map(entries) = self else { return ConfigValue.map([]).setting(path, value) }
        if let index = entries.firstIndex(where: { $0.key == key }) {
            entries[index].value = entries[index].value.setting(Array(path.dropFirst()), value)
        } else {
            entries.append(Entry(key, ConfigValue.map([]).setting(Array(path.dropFirst()), value)))
        }
        return .map(entries)
    }

    /// Keys whose values are secret anywhere in a Talos config (keys of CAs, tokens, secrets).
    static let secretKeys: Set<String> = ["key", "token", "secret", "bootstrapToken", "secretboxEncryptionSecret", "aescbcEncryptionSecret"]

    var sortedKeys: ConfigValue {
        switch self {
        case let .map(entries): return .map(entries.map { Entry($0.key, $0.value.sortedKeys) }.sorted { $0.key < $1.key })
        case let .list(items): return .list(items.map(\.sortedKeys))
        default: return self
        }
    }

    func redactingSecrets() -> ConfigValue {
        switch self {
        case let .map(entries):
            return .map(entries.map { entry in
                if Self.secretKeys.contains(entry.key), case let .string(text) = entry.value, !text.isEmpty { return Entry(entry.key, .string("<redacted>")) }
                return Entry(entry.key, entry.value.redactingSecrets())
            })
        case let .list(items): return .list(items.map { $0.redactingSecrets() })
        default: return self
        }
    }
}
