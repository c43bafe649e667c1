import Foundation

/// Where a secret lives. Inventories never hold secret values inline, only one of these references,
/// so the file can be committed and the values never pass through argv.
public enum CredentialReference: Sendable, Hashable, CustomStringConvertible {
    /// `env:VAR`: an environment variable of the provision process.
    case environment(String)
    /// `file:PATH`: a file's content (trailing newline trimmed); `~` expands to `$HOME`.
    case file(String)
    /// `op://vault/item/field`: a 1Password secret reference, read with the `op` CLI.
    case onePassword(String)

    public init?(_ text: String) {
        if text.hasPrefix("env:") {
            let name = String(text.dropFirst(4))
            guard !name.isEmpty, name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else { return nil }
            self = .environment(name)
        } else if text.hasPrefix("file:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .file(path)
        } else if text.hasPrefix("op://") {
            guard text.dropFirst(5).split(separator: "/").count >= 3 else { return nil }
            self = .onePassword(text)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case let .environment(name): return "env:\(name)"
        case let .file(path): return "file:\(path)"
        case let .onePassword(ref): return ref
        }
    }

    /// Resolves a `file:` path relative to the inventory's folder; `~` is `$HOME` of `environment`.
    public func filePath(relativeTo base: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard case let .file(path) = self else { return nil }
        return PathText.resolve(path, relativeTo: base, environment: environment)
    }

    public static let formats = "`env:VARIABLE`, `file:PATH` or `op://vault/item/field`"
}

/// Fails when a reference cannot be resolved; says which reference and how to fix it, never the value.
public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public var reference: CredentialReference
    public var reason: String
    public var fix: String

    public var description: String { "credential \(reference) \(reason); \(fix)" }
}

/// Turns references into values and registers every value with the redactor before anyone sees it.
public struct CredentialResolver: Sendable {
    public var environment: [String: String]
    public var baseDirectory: String
    public var redactor: Redactor

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, baseDirectory: String, redactor: Redactor) {
        self.environment = environment
        self.baseDirectory = baseDirectory
        self.redactor = redactor
    }

    /// Resolves the `env:` and `file:` references that are available, only so their values are
    /// registered with the redactor before anything prints; even output of a user's own command is
    /// then masked. Missing ones are left for the step that needs them to report. `op://` is skipped
    /// (it may prompt).
    public func preload(_ references: [CredentialReference]) async {
        for reference in references {
            if case .onePassword = reference { continue }
            _ = try? await resolve(reference)
        }
    }

    public func resolve(_ reference: CredentialReference) async throws -> String {
        let value: String
        switch reference {
        case let .environment(name):
            guard let found = environment[name], !found.isEmpty else {
                throw CredentialError(reference: reference, reason: "is not set", fix: "export \(name) before running provision")
            }
            value = found
        case .file:
            let path = reference.filePath(relativeTo: baseDirectory, environment: environment) ?? ""
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw CredentialError(reference: reference, reason: "cannot be read", fix: "create \(path) (mode 0600) or fix the path")
            }
            value = text.hasSuffix("\n") ? String(text.dropLast()) : text
        case let .onePassword(ref):
            value = try await OnePasswordCLI.read(ref, reference: reference)
        }
        redactor.register(value)
        return value
    }
}

/// Reads `op://` references with the 1Password CLI; the reference (not the secret) is the only argument.
enum OnePasswordCLI {
    static func read(_ ref: String, reference: CredentialReference) async throws -> String {
        let result = try? await Subprocess.run(["op", "read", "--no-newline", ref])
        guard let result, result.status == 0 else {
            throw CredentialError(reference: reference, reason: "could not be read with the 1Password CLI",
                                  fix: "install `op` and sign in (or set OP_SERVICE_ACCOUNT_TOKEN), or use env:/file: instead")
        }
        return result.stdout
    }
}
