/// A value read from YAML together with where it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}

/// Reads one YAML mapping field by field, reporting type errors and, on `finish()`, every key that
/// no field asked for (with a "did you mean"). Non-throwing so one load reports all problems.
public final class MappingReader {
    public let node: YAMLNode
    public let collector: DiagnosticCollector
    /// Dotted path used in messages, e.g. `nodes[2].machine`.
    public let path: String
    private var known: [String] = []
    private let pairs: [(key: YAMLNode, value: YAMLNode)]

    /// Returns nil (and reports) when `node` is not a mapping.
    public init?(_ node: YAMLNode, path: String, collector: DiagnosticCollector) {
        self.node = node
        self.path = path
        self.collector = collector
        guard case let .mapping(pairs) = node.value else {
            collector.error("type.mismatch", at: node.location, "`\(path)` must be a mapping, found \(node.kindName)",
                            fix: "write `\(path)` as `key: value` lines indented under it")
            return nil
        }
        self.pairs = pairs
    }

    public var location: SourceLocation { node.location }

    /// Keys present in the mapping, in file order.
    public var keys: [Located<String>] {
        pairs.map { Located($0.key.scalar ?? "", at: $0.key.location) }
    }

    private func field(_ key: String) -> YAMLNode? {
        known.append(key)
        guard let value = pairs.first(where: { $0.key.scalar == key })?.value, !value.isNull else { return nil }
        return value
    }

    private func missing(_ key: String, _ hint: String?) {
        collector.error("field.required", at: node.location, "`\(path)` is missing `\(key)`",
                        fix: hint ?? "add `\(key):` under `\(path)`")
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Marks keys as known without reading them (for blocks handled elsewhere).
    public func allow(_ keys: String...) { known.append(contentsOf: keys) }

    public func node(_ key: String, required: Bool = false, hint: String? = nil) -> YAMLNode? {
        let value = field(key)
        if value == nil, required { missing(key, hint) }
        return value
    }

    public func string(_ key: String, required: Bool = false, hint: String? = nil) -> Located<String>? {
        guard let value = node(key, required: required, hint: hint) else { return nil }
        guard let text = value.scalar else {
            collector.error("type.mismatch", at: value.location, "`\(childPath(key))` must be a string, found \(value.kindName)",
                            fix: hint ?? "write a single value after `\(key):`")
            return nil
        }
        return Located(text, at: value.location)
    }

    public func int(_ key: String, required: Bool = false, range: ClosedRange<Int>? = nil, hint: String? = nil) -> Located<Int>? {
        guard let text = string(key, required: required, hint: hint) else { return nil }
        guard let number = Self.yamlInt(text.value) else {
            collector.error("type.mismatch", at: text.location, "`\(childPath(key))` must be a whole number, found `\(text.value)`",
                            fix: hint ?? "write a number such as `4`")
            return nil
        }
        if let range, !range.contains(number) {
            collector.error("value.out-of-range", at: text.location,
                            "`\(childPath(key))` is \(number); it must be between \(range.lowerBound) and \(range.upperBound)",
                            fix: hint ?? "use a value in that range")
            return nil
        }
        return Located(number, at: text.location)
    }

    /// Integers as YAML writes them: decimal, `0x` hex, `0o` octal.
    static func yamlInt(_ text: String) -> Int? {
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        return Int(text)
    }

    public func double(_ key: String, required: Bool = false, hint: String? = nil) -> Located<Double>? {
        guard let text = string(key, required: required, hint: hint) else { return nil }
        guard let number = Double(text.value), number.isFinite else {
            collector.error("type.mismatch", at: text.location, "`\(childPath(key))` must be a number, found `\(text.value)`",
                            fix: hint ?? "write a number such as `0.5`")
            return nil
        }
        return Located(number, at: text.location)
    }

    public func bool(_ key: String, hint: String? = nil) -> Located<Bool>? {
        guard let text = string(key) else { return nil }
        switch text.value {
        case "true": return Located(true, at: text.location)
        case "false": return Located(false, at: text.location)
        default:
            collector.error("type.mismatch", at: text.location, "`\(childPath(key))` must be `true` or `false`, found `\(text.value)`",
                            fix: hint ?? "write `true` or `false`")
            return nil
        }
    }

    /// A string restricted to a fixed set of choices.
    public func choice(_ key: String, _ choices: [String], required: Bool = false) -> Located<String>? {
        guard let text = string(key, required: required, hint: "one of: \(choices.joined(separator: ", "))") else { return nil }
        guard choices.contains(text.value) else {
            collector.error("value.invalid", at: text.location,
                            "`\(childPath(key))` is `\(text.value)`; expected one of \(choices.joined(separator: ", "))\(Suggestion.hint(for: text.value, in: choices))",
                            fix: "use one of: \(choices.joined(separator: ", "))")
            return nil
        }
        return text
    }

    /// A value parsed by `parse`; `expected` describes the format in the error.
    public func parsed<T: Sendable>(_ key: String, required: Bool = false, expected: String, _ parse: (String) -> T?) -> Located<T>? {
        guard let text = string(key, required: required, hint: "write \(expected)") else { return nil }
        guard let value = parse(text.value) else {
            collector.error("value.invalid", at: text.location, "`\(childPath(key))` is `\(text.value)`, which is not \(expected)",
                            fix: "write \(expected)")
            return nil
        }
        return Located(value, at: text.location)
    }

    public func mapping(_ key: String, required: Bool = false, hint: String? = nil) -> MappingReader? {
        guard let value = node(key, required: required, hint: hint) else { return nil }
        return MappingReader(value, path: childPath(key), collector: collector)
    }

    public func list(_ key: String, required: Bool = false, hint: String? = nil) -> [YAMLNode]? {
        guard let value = node(key, required: required, hint: hint) else { return nil }
        guard case let .sequence(items) = value.value else {
            collector.error("type.mismatch", at: value.location, "`\(childPath(key))` must be a list, found \(value.kindName)",
                            fix: hint ?? "write each item on its own line starting with `- `")
            return nil
        }
        return items
    }

    public func stringList(_ key: String, required: Bool = false, hint: String? = nil) -> [Located<String>]? {
        guard let items = list(key, required: required, hint: hint) else { return nil }
        return items.compactMap { item in
            guard let text = item.scalar else {
                collector.error("type.mismatch", at: item.location, "items of `\(childPath(key))` must be strings, found \(item.kindName)",
                                fix: hint ?? "write one value per `- ` line")
                return nil
            }
            return Located(text, at: item.location)
        }
    }

    /// Reports keys nobody asked for. Call after reading every field.
    public func finish() {
        for key in keys where !known.contains(key.value) {
            collector.error("unknown-key", at: key.location,
                            "unknown key `\(key.value)` in `\(path.isEmpty ? "top level" : path)`\(Suggestion.hint(for: key.value, in: known))",
                            fix: "remove it or fix its spelling; known keys: \(known.uniqued().joined(separator: ", "))")
        }
    }
}

extension Array where Element: Hashable {
    /// Keeps the first of each element, in order.
    public func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
