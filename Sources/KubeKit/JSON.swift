import Foundation

/// A Kubernetes object or any JSON value, as a Sendable value type, so objects cross actors and
/// tasks freely. Integers stay integers (replicas, ports); key order is not kept (JSON objects are
/// unordered, and the API server does not care either).
public enum JSON: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    // MARK: Reading

    public subscript(key: String) -> JSON? {
        get { if case let .object(members) = self { return members[key] } else { return nil } }
        set {
            guard case var .object(members) = self else { return }
            members[key] = newValue
            self = .object(members)
        }
    }

    /// The value at a dotted path (`status.conditions`, `metadata.name`).
    public subscript(path path: String) -> JSON? {
        var current: JSON? = self
        for key in path.split(separator: ".") { current = current?[String(key)] }
        return current
    }

    public var string: String? { if case let .string(value) = self { return value } else { return nil } }
    public var int: Int? {
        switch self {
        case let .int(value): return value
        case let .double(value) where value == value.rounded(): return Int(value)
        default: return nil
        }
    }
    public var bool: Bool? { if case let .bool(value) = self { return value } else { return nil } }
    public var array: [JSON]? { if case let .array(value) = self { return value } else { return nil } }
    public var object: [String: JSON]? { if case let .object(value) = self { return value } else { return nil } }

    /// Sets a value at a dotted path, creating objects on the way.
    public mutating func set(_ path: String, _ value: JSON) {
        let keys = path.split(separator: ".").map(String.init)
        self = Self.setting(self, keys[...], value)
    }

    private static func setting(_ base: JSON, _ keys: ArraySlice<String>, _ value: JSON) -> JSON {
        guard let key = keys.first else { return value }
        var members = base.object ?? [:]
        members[key] = setting(members[key] ?? .object([:]), keys.dropFirst(), value)
        return .object(members)
    }

    // MARK: Kubernetes conveniences

    public var apiVersion: String { self["apiVersion"]?.string ?? "" }
    public var kind: String { self["kind"]?.string ?? "" }
    public var name: String { self[path: "metadata.name"]?.string ?? "" }
    public var namespace: String? { self[path: "metadata.namespace"]?.string }

    /// The status of the condition of `type` (`"True"`, `"False"`, `"Unknown"`), if present.
    public func condition(_ type: String) -> String? {
        self[path: "status.conditions"]?.array?.first { $0["type"]?.string == type }?["status"]?.string
    }

    // MARK: Converting

    public static func parse(_ data: Data) throws -> JSON { try JSONDecoder().decode(JSON.self, from: data) }

    public static func parse(_ text: String) throws -> JSON { try parse(Data(text.utf8)) }

    public func data(pretty: Bool = false) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("null".utf8)
    }

    public var text: String { String(decoding: data(), as: UTF8.self) }
}

extension JSON: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Int.self) { self = .int(value); return }
        if let value = try? container.decode(Double.self) { self = .double(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSON].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSON].self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .int(value): try container.encode(value)
        case let .double(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }
}

/// Literals, so objects read like the YAML they become: `["kind": "Namespace", "metadata": ["name": "x"]]`.
extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(Dictionary(elements, uniquingKeysWith: { $1 })) }
    public init(nilLiteral: ()) { self = .null }
}
