import Foundation
import ProvisionCore

/// A typed, ordered YAML value for machine-config documents: what we render, patch, validate and emit.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([ConfigValue])
    case map([Entry])
    case null

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: ConfigValue
        public init(_ key: String, _ value: ConfigValue) {
            self.key = key
            self.value = value
        }
    }

    /// Builds a map, dropping nil values so optional fields simply disappear.
    public static func object(_ pairs: KeyValuePairs<String, ConfigValue?>) -> ConfigValue {
        .map(pairs.compactMap { key, value in value.map { Entry(key, $0) } })
    }

    public subscript(key: String) -> ConfigValue? {
        guard case let .map(entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    public var stringValue: String? { if case let .string(text) = self { return text } else { return nil } }

    /// From inventory YAML: plain `true`/`false`/integers keep their type; quoted text stays a string.
    public init(_ node: YAMLNode) {
        switch node.value {
        case let .scalar(text, plain):
            if node.isNull { self = .null }
            else if plain, text == "true" || text == "false" { self = .bool(text == "true") }
            else if plain, let number = Int(text) { self = .int(number) }
            else { self = .string(text) }
        case let .sequence(items): self = .list(items.map(ConfigValue.init))
        case let .mapping(pairs): self = .map(pairs.map { Entry($0.key.scalar ?? "", ConfigValue($0.value)) })
        }
    }

    // MARK: - Emitting

    /// YAML text with 4-space indentation, as talosctl writes configs.
    public var yaml: String {
        var out = ""
        emit(into: &out, indent: 0)
        return out
    }

    func emit(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case let .map(entries):
            if entries.isEmpty { out += pad + "{}\n"; return }
            for entry in entries {
                switch entry.value {
                case let .map(inner) where !inner.isEmpty:
                    out += pad + Self.key(entry.key) + ":\n"
                    entry.value.emit(into: &out, indent: indent + 4)
                case let .list(items) where !items.isEmpty:
                    out += pad + Self.key(entry.key) + ":\n"
                    entry.value.emit(into: &out, indent: indent + 4)
                default:
                    out += pad + Self.key(entry.key) + ": " + entry.value.inline + "\n"
                }
            }
        case let .list(items):
            if items.isEmpty { out += pad + "[]\n"; return }
            for item in items {
                switch item {
                case let .map(entries) where !entries.isEmpty:
                    var nested = ""
                    item.emit(into: &nested, indent: indent + 2)
                    out += pad + "- " + nested.dropFirst(indent + 2)
                case let .list(inner) where !inner.isEmpty:
                    out += pad + "-\n"
                    item.emit(into: &out, indent: indent + 4)
                default:
                    out += pad + "- " + item.inline + "\n"
                }
            }
        default:
            out += pad + inline + "\n"
        }
    }

    var inline: String {
        switch self {
        case let .string(text):
            if text.contains("\n") { return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\"" }
            return CanonicalYAMLWriter.quote(text)
        case let .int(number): return String(number)
        case let .bool(flag): return flag ? "true" : "false"
        case .null: return "null"
        case .list: return "[]"
        case .map: return "{}"
        }
    }

    static func key(_ text: String) -> String { CanonicalYAMLWriter.quote(text) }
}
