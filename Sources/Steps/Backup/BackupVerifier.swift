import Crypto
import Foundation
import ProvisionCore
import TalosKit

/// The age identity that opens backups: `backup.identity`, else `secrets.identity`.
public enum BackupIdentity {
    public static func load(_ inventory: Inventory, credentials: CredentialResolver) async throws -> Curve25519.KeyAgreement.PrivateKey {
        guard let reference = inventory.backup?.identity ?? inventory.secrets.identity else {
            throw StepError.permanent("no age identity to decrypt backups with: set `backup.identity` (or `secrets.identity`) in \(inventory.file) to a reference to the key file")
        }
        let text = try await credentials.resolve(reference.value)
        guard let line = text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { $0.hasPrefix("AGE-SECRET-KEY-") }) else {
            throw StepError.permanent("\(reference.value) holds no age identity (a line starting AGE-SECRET-KEY-)")
        }
        return try AgeFile.identity(line)
    }
}

/// Downloads a set's objects and checks each against its manifest: the SHA-256 of what is stored,
/// then that it decrypts, and for the snapshot that it is whole (size modulo 512 is 32, the
/// appended hash). What `backup verify` and a restore rely on.
public struct BackupVerifier: Sendable {
    public let bucket: BackupBucket
    public let identity: Curve25519.KeyAgreement.PrivateKey

    public init(bucket: BackupBucket, identity: Curve25519.KeyAgreement.PrivateKey) {
        self.bucket = bucket
        self.identity = identity
    }

    public struct Report: Sendable {
        public var set: String
        public var manifest: BackupManifest
        /// Per object: its name and what was checked.
        public var checked: [(name: String, detail: String)]
    }

    /// One object to `path`, its SHA-256 matched against the manifest (a mismatch removes it).
    public func fetch(set: String, object: String, manifest: BackupManifest, to path: String) async throws {
        guard let expected = manifest.objects.first(where: { $0.name == object }) else {
            throw StepError.permanent("set \(set)'s manifest lists no \(object)")
        }
        try await bucket.s3.download(bucket.key(set, object), to: path)
        let (bytes, digest) = try BackupTake.digest(path)
        guard bytes == expected.bytes, digest == expected.sha256 else {
            try? FileManager.default.removeItem(atPath: path)
            throw StepError.permanent("\(bucket.s3.describe(bucket.key(set, object))) is damaged: \(bytes) bytes with SHA-256 \(digest.prefix(12))…, the manifest says \(expected.bytes) bytes, \(expected.sha256.prefix(12))…")
        }
    }

    public func verify(set: String, work: String) async throws -> Report {
        guard let manifest = try await bucket.manifest(set) else {
            throw StepError.permanent("set \(set) has no manifest: its upload did not finish")
        }
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: work) }
        var checked: [(String, String)] = []
        for object in manifest.objects {
            let path = "\(work)/\(object.name.replacingOccurrences(of: "/", with: "_"))"
            try await fetch(set: set, object: object.name, manifest: manifest, to: path)
            do {
                if object.name == "etcd.snapshot.age" {
                    let size = try EtcdSnapshotWriter.write(to: path + ".db") { try AgeFile.decrypt(file: path, identity: identity, into: $0) }
                    checked.append((object.name, "sha256 ok, decrypts, etcd snapshot of \(size) bytes whole (appended SHA-256 matches)"))
                } else {
                    var size = 0
                    try AgeFile.decrypt(file: path, identity: identity) { size += $0.count }
                    checked.append((object.name, "sha256 ok, decrypts (\(size) bytes)"))
                }
            } catch let error as AgeFile.AgeError {
                throw StepError.permanent("\(object.name) of set \(set) does not decrypt with this identity: \(error)")
            }
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".db")
        }
        return Report(set: set, manifest: manifest, checked: checked)
    }
}
