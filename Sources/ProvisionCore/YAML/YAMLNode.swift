/// A YAML value with the place it was written, so every diagnostic can name `file:line:column`.
///
/// We convert Yams' tree into this one once, under a size and depth budget, so the rest of the code
/// works on a small `Sendable` tree that cannot blow the stack or explode through aliases.
public struct YAMLNode: Sendable {
    public indirect enum Value: Sendable {
        case scalar(String, plain: Bool)
        case mapping([(key: YAMLNode, value: YAMLNode)])
        case sequence([YAMLNode])
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// True for `~`, `null` and an empty plain scalar, which YAML reads as "no value".
    public var isNull: Bool {
        if case let .scalar(text, plain) = value, plain {
            return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
        }
        return false
    }

    public var scalar: String? {
        if case let .scalar(text, _) = value, !isNull { return text }
        return nil
    }

    public var kindName: String {
        switch value {
        case .scalar: return isNull ? "null" : "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// Looks up a key in a mapping node.
    public subscript(key: String) -> YAMLNode? {
        guard case let .mapping(pairs) = value else { return nil }
        return pairs.first { $0.key.scalar == key }?.value
    }
}
