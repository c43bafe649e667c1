/// Writes YAML the way go-yaml v4 marshals the factory's schematic: 4 spaces per level, sequence
/// items indented 4 under their key, plain scalars unless quoting is needed, sorted map keys.
struct CanonicalYAMLWriter {
    var text = ""

    mutating func line(_ content: String, indent: Int, extra: Int = 0) {
        text += String(repeating: " ", count: indent * 4 + extra) + content + "\n"
    }

    mutating func scalar(_ key: String, _ value: String, indent: Int, extra: Int = 0) {
        if value.contains("\n") {
            line("\(key): |" + (value.hasSuffix("\n") ? "" : "-"), indent: indent, extra: extra)
            for part in value.split(separator: "\n", omittingEmptySubsequences: false).dropLast(value.hasSuffix("\n") ? 1 : 0) {
                text += (part.isEmpty ? "" : String(repeating: " ", count: (indent + 1) * 4 + extra) + part) + "\n"
            }
        } else {
            line("\(key): \(Self.quote(value))", indent: indent, extra: extra)
        }
    }

    mutating func list(_ key: String, _ values: [String], indent: Int) {
        line("\(key):", indent: indent)
        for value in values { line("- \(Self.quote(value))", indent: indent + 1) }
    }

    /// A free-form value (overlay options): maps with sorted keys, as go-yaml marshals map[string]any;
    /// numbers and booleans stay plain, strings are quoted only when they would read as another type.
    mutating func value(_ key: String, _ value: ConfigValue, indent: Int) {
        switch value {
        case let .string(text): scalar(key, text, indent: indent)
        case let .map(entries):
            if entries.isEmpty { line("\(key): {}", indent: indent); return }
            line("\(key):", indent: indent)
            for entry in entries.sorted(by: { $0.key < $1.key }) { self.value(entry.key, entry.value, indent: indent + 1) }
        case let .list(items):
            if items.isEmpty { line("\(key): []", indent: indent); return }
            line("\(key):", indent: indent)
            for item in items {
                if case let .string(text) = item { line("- \(Self.quote(text))", indent: indent + 1) }
                else if case let .map(entries) = item {
                    line("-", indent: indent + 1)
                    for entry in entries.sorted(by: { $0.key < $1.key }) { self.value(entry.key, entry.value, indent: indent + 2) }
                }
                else { line("- \(item.inline)", indent: indent + 1) }
            }
        default:
            line("\(key): \(value.inline)", indent: indent)
        }
    }

    /// Single-quotes values that would otherwise read as another type or as YAML syntax.
    static func quote(_ value: String) -> String {
        let lowered = value.lowercased()
        let resolvesToOther = ["", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n"].contains(lowered)
            || Int(value) != nil || Double(value) != nil || value.hasPrefix("0x") || value.hasPrefix("0o")
        let indicator = value.first.map { ",[]{}#&*!|>'\"%@`".contains($0) } ?? false
            || ["-", "?", ":"].contains { value == $0 || value.hasPrefix($0 + " ") }
        let risky = value.contains(": ") || value.contains(" #") || value.hasPrefix(" ") || value.hasSuffix(" ") || value.hasSuffix(":")
        guard resolvesToOther || indicator || risky else { return value }
        return "'" + value.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
}
