import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// Where an inventory's secrets bundle lives at rest: `secrets.age` in the state directory, encrypted
/// to the inventory's age recipients, or `secrets.yaml` (mode 0600) only when the inventory says
/// `encryption: plaintext`. A bundle is never overwritten: it is the cluster's root of trust.
public struct SecretsStore: Sendable {
    public let inventory: Inventory
    public let stateDirectory: String
    public let credentials: CredentialResolver

    public init(inventory: Inventory, stateDirectory: String, credentials: CredentialResolver) {
        self.inventory = inventory
        self.stateDirectory = stateDirectory
        self.credentials = credentials
    }

    public var path: String {
        inventory.secrets.encryption.value == .age ? "\(stateDirectory)/secrets.age" : "\(stateDirectory)/secrets.yaml"
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Reads and decrypts the bundle, and registers every secret in it for redaction.
    public func load() async throws -> SecretsBundle {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecretsError.missing(path: path, inventory: inventory.name)
        }
        let text: String
        switch inventory.secrets.encryption.value {
        case .plaintext:
            text = String(decoding: data, as: UTF8.self)
        case .age:
            guard let reference = inventory.secrets.identity?.value else { throw SecretsError.noIdentity(inventory.file) }
            let identity: String
            do { identity = try await credentials.resolve(reference) } catch { throw SecretsError.identity("\(error)") }
            do {
                let key = try AgeFile.identity(identity)
                text = String(decoding: try AgeFile.decrypt(Array(data), identity: key), as: UTF8.self)
            } catch let error as AgeFile.AgeError {
                throw SecretsError.undecryptable(path: path, reason: error.description)
            }
        }
        let bundle: SecretsBundle
        do { bundle = try SecretsBundle.parse(text: text, file: path) } catch {
            throw SecretsError.corrupt(path: path, diagnostics: error.diagnostics)
        }
        for value in bundle.secretValues { credentials.redactor.register(value) }
        return bundle
    }

    /// Writes the bundle if, and only if, none exists yet. Returns false when one already did.
    @discardableResult
    public func saveIfAbsent(_ bundle: SecretsBundle) throws -> Bool {
        for value in bundle.secretValues { credentials.redactor.register(value) }
        if exists { return false }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let bytes: [UInt8]
        switch inventory.secrets.encryption.value {
        case .plaintext: bytes = Array(bundle.yaml.utf8)
        case .age: bytes = try AgeFile.encrypt(Array(bundle.yaml.utf8), to: inventory.secrets.recipients.map(\.value))
        }
        return try PrivateFile.create(bytes, at: path)
    }
}

public enum SecretsError: Error, CustomStringConvertible {
    case missing(path: String, inventory: String)
    case noIdentity(String)
    case identity(String)
    case undecryptable(path: String, reason: String)
    case corrupt(path: String, diagnostics: [Diagnostic])

    public var description: String {
        switch self {
        case let .missing(path, inventory):
            return "no secrets bundle at \(path); create one with `provision secrets init \(inventory)` or import one with `provision secrets import \(inventory) FILE`"
        case let .noIdentity(file):
            return "\(file): `secrets.identity` is needed to decrypt the bundle; add `identity: file:PATH` (an age-keygen key)"
        case let .identity(reason):
            return "the age identity could not be read: \(reason)"
        case let .undecryptable(path, reason):
            return "\(path) cannot be decrypted: \(reason)"
        case let .corrupt(path, diagnostics):
            return "\(path) is not a valid secrets bundle:\n" + diagnostics.map(\.description).joined(separator: "\n")
        }
    }
}
