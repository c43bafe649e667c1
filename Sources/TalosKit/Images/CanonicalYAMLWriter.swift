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

    mutating func value(_ key: String, _ value: YAMLValue, indent: Int) {
        switch value {
        case let .scalar(text): scalar(key, text, indent: indent)
        case let .list(items):
            line("\(key):", indent: indent)
            for item in items {
                if case let .scalar(text) = item { line("- \(Self.quote(text))", indent: indent + 1) } else {
                    line("-", indent: indent + 1)
                    self.value("", item, indent: indent + 2)
                }
            }
        case let .map(pairs):
            if pairs.isEmpty { line("\(key): {}", indent: indent); return }
            line("\(key):", indent: indent)
            for (k, v) in pairs.sorted(by: { $0.0 < $1.0 }) { self.value(k, v, indent: indent + 1) }
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
