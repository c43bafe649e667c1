/// A place in an input file, 1-based like every editor shows it.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One finding about an input: where, a stable key for scripts and tests, what is wrong, and the fix.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public var severity: Severity
    public var location: SourceLocation
    /// A stable identifier such as `inventory.unknown-key`; tests and `--json` consumers match on it.
    public var key: String
    public var message: String
    public var fix: String?

    public init(_ severity: Severity, _ key: String, at location: SourceLocation, _ message: String, fix: String? = nil) {
        self.severity = severity
        self.location = location
        self.key = key
        self.message = message
        self.fix = fix
    }

    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message) [\(key)]"
        if let fix { text += "\n    fix: \(fix)" }
        return text
    }
}

/// Collects every diagnostic of a load so the user sees all problems at once, not only the first.
public final class DiagnosticCollector {
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public func error(_ key: String, at location: SourceLocation, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.error, key, at: location, message, fix: fix))
    }

    public func warning(_ key: String, at location: SourceLocation, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.warning, key, at: location, message, fix: fix))
    }

    public func append(contentsOf other: [Diagnostic]) { diagnostics.append(contentsOf: other) }

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Diagnostics in file order, errors and warnings interleaved as they appear.
    public var sorted: [Diagnostic] {
        diagnostics.sorted {
            ($0.location.file, $0.location.line, $0.location.column) < ($1.location.file, $1.location.line, $1.location.column)
        }
    }
}

/// Thrown when an input (inventory, playbook, flag) is unusable; the CLI maps it to exit 64.
public struct InputError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public init(_ key: String, at location: SourceLocation, _ message: String, fix: String? = nil) {
        self.diagnostics = [Diagnostic(.error, key, at: location, message, fix: fix)]
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
