import Foundation
import ProvisionCore
import Synchronization

/// Talos' published JSON Schema for one minor version, applied to rendered documents. Implements the
/// keywords those schemas use: type, $ref, properties, additionalProperties, patternProperties,
/// required, enum, items, pattern, oneOf.
public final class ConfigSchema: @unchecked Sendable {
    // @unchecked: `definitions` is parsed once in init and only read afterwards.
    private let definitions: [String: Any]
    public let version: String

    public static let supportedVersions = ["v1.12", "v1.13"]

    /// v1alpha1 keys a minor's published schema leaves out but its decoder still parses (deprecated,
    /// hidden from the docs): a config a node accepted under 1.12 keeps working after an upgrade.
    static let hiddenButParsed: [String: Set<String>] = [
        "v1.13": ["machine.network", "machine.env", "machine.disks", "machine.time", "machine.registries"],
    ]

    /// Paths accepted without a check; empty unless the schema stands in for a node's decoder.
    private let tolerated: Set<String>

    private static let parsed = Mutex<[String: ConfigSchema]>([:])

    /// The schema for a Talos version, parsed once per process (rendering 200 configs parsed the
    /// same JSON Schema 200 times).
    public static func forVersion(_ talosVersion: String, asNodeDecoder: Bool = false) throws(ConfigError) -> ConfigSchema {
        let key = VersionContract.minor(of: talosVersion) + (asNodeDecoder ? "|node" : "")
        if let known = parsed.withLock({ $0[key] }) { return known }
        let schema = try ConfigSchema(talosVersion: talosVersion, asNodeDecoder: asNodeDecoder)
        parsed.withLock { $0[key] = schema }
        return schema
    }

    /// The schema for a Talos version such as `v1.13.2` (by minor version). `asNodeDecoder`: judge as
    /// a running node does (the lab), which also takes the deprecated keys the published schema hides;
    /// what we render must pass without that.
    public init(talosVersion: String, asNodeDecoder: Bool = false) throws(ConfigError) {
        let minor = VersionContract.minor(of: talosVersion)
        guard Self.supportedVersions.contains(minor),
              let url = Bundle.module.url(forResource: minor, withExtension: "json"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let defs = object["$defs"] as? [String: Any] else {
            throw ConfigError.unsupportedVersion(talosVersion)
        }
        definitions = defs
        version = minor
        tolerated = asNodeDecoder ? Self.hiddenButParsed[minor] ?? [] : []
    }

    /// Problems in one document, as `path: reason` strings; empty when valid.
    public func problems(in document: ConfigValue) -> [String] {
        var problems: [String] = []
        guard let schema = schema(for: document, problems: &problems) else { return problems }
        check(document, against: schema, path: "", problems: &problems)
        return problems
    }

    private func schema(for document: ConfigValue, problems: inout [String]) -> [String: Any]? {
        if document["version"] != nil { return definitions["v1alpha1.Config"] as? [String: Any] }
        guard let kind = document["kind"]?.stringValue else {
            problems.append("document has neither `version: v1alpha1` nor a `kind`")
            return nil
        }
        for case let (_, definition as [String: Any]) in definitions {
            if let properties = definition["properties"] as? [String: Any], let kindSchema = properties["kind"] as? [String: Any],
               let allowed = kindSchema["enum"] as? [String], allowed == [kind] {
                return definition
            }
        }
        problems.append("`kind: \(kind)` is not a document kind Talos \(version) knows")
        return nil
    }

    private func resolve(_ schema: [String: Any]) -> [String: Any] {
        guard let ref = schema["$ref"] as? String, ref.hasPrefix("#/$defs/"),
              let target = definitions[String(ref.dropFirst("#/$defs/".count))] as? [String: Any] else { return schema }
        return resolve(target)
    }

    private func check(_ value: ConfigValue, against raw: [String: Any], path: String, problems: inout [String]) {
        let schema = resolve(raw)
        let here = path.isEmpty ? "(document)" : path
        if let options = schema["oneOf"] as? [[String: Any]] {
            let matching = options.filter { option in
                var scratch: [String] = []
                check(value, against: option, path: path, problems: &scratch)
                return scratch.isEmpty
            }
            if matching.count != 1 { problems.append("\(here): matches \(matching.count) of the allowed forms, expected exactly one") }
            return
        }
        if let allowed = schema["enum"] as? [Any], !allowed.contains(where: { Self.equal(value, $0) }) {
            problems.append("\(here): \(value.inline) is not one of \(allowed.map { "\($0)" }.joined(separator: ", "))")
            return
        }
        if let type = schema["type"] as? String, !Self.matches(value, type: type) {
            problems.append("\(here): expected \(type), found \(Self.typeName(value))")
            return
        }
        switch value {
        case let .map(entries):
            let properties = schema["properties"] as? [String: Any] ?? [:]
            let patterns = schema["patternProperties"] as? [String: Any] ?? [:]
            for required in schema["required"] as? [String] ?? [] where !entries.contains(where: { $0.key == required }) {
                problems.append("\(here): missing required `\(required)`")
            }
            for entry in entries {
                let child = path.isEmpty ? entry.key : "\(path).\(entry.key)"
                if tolerated.contains(child) { continue }
                if let sub = properties[entry.key] as? [String: Any] {
                    check(entry.value, against: sub, path: child, problems: &problems)
                } else if let (_, sub) = patterns.first(where: { Self.regex($0.key, matches: entry.key) }), let sub = sub as? [String: Any] {
                    check(entry.value, against: sub, path: child, problems: &problems)
                } else if let extra = schema["additionalProperties"] as? [String: Any] {
                    check(entry.value, against: extra, path: child, problems: &problems)
                } else if schema["additionalProperties"] as? Bool == false {
                    problems.append("\(child): unknown key\(Suggestion.hint(for: entry.key, in: properties.keys.sorted()))")
                }
            }
        case let .list(items):
            if let itemSchema = schema["items"] as? [String: Any] {
                for (index, item) in items.enumerated() { check(item, against: itemSchema, path: "\(path)[\(index)]", problems: &problems) }
            }
        case let .string(text):
            if let pattern = schema["pattern"] as? String, !Self.regex(pattern, matches: text) {
                problems.append("\(here): `\(text)` does not match \(pattern)")
            }
        default:
            break
        }
    }

    static func matches(_ value: ConfigValue, type: String) -> Bool {
        switch (value, type) {
        case (.map, "object"), (.list, "array"), (.string, "string"), (.int, "integer"), (.int, "number"), (.bool, "boolean"): return true
        default: return false
        }
    }

    static func typeName(_ value: ConfigValue) -> String {
        switch value {
        case .map: return "a mapping"
        case .list: return "a list"
        case .string: return "a string"
        case .int: return "an integer"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    static func equal(_ value: ConfigValue, _ json: Any) -> Bool {
        switch value {
        case let .string(text): return (json as? String) == text
        case let .int(number): return (json as? NSNumber)?.intValue == number && !(json is String)
        case let .bool(flag): return (json as? Bool) == flag
        default: return false
        }
    }

    static func regex(_ pattern: String, matches text: String) -> Bool {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return true }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}

public enum ConfigError: Error, Sendable, CustomStringConvertible {
    case unsupportedVersion(String)
    case invalid(node: String, problems: [String])
    case patch(file: String, line: Int, column: Int, reason: String)
    case input(String)

    public var description: String {
        switch self {
        case let .unsupportedVersion(version):
            return "Talos \(version) has no schema in this build (supported: \(ConfigSchema.supportedVersions.joined(separator: ", "))); pin the node to a supported version"
        case let .invalid(node, problems):
            return "the config rendered for \(node) would be rejected by Talos:\n" + problems.map { "  " + $0 }.joined(separator: "\n")
                + "\n  fix: correct the patch or inventory field named above"
        case let .patch(file, line, column, reason):
            return "\(file):\(line):\(column): patch \(reason)"
        case let .input(message):
            return message
        }
    }
}
