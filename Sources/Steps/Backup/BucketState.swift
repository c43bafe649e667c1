import Foundation
import Providers
import ProvisionCore
import TalosKit

/// The state a second host needs, kept in the bucket when `state.backend: s3`: the secrets bundle
/// (always age: the inventory's own encrypted file, or a lab's plain one encrypted to the backup's
/// recipients) and an archive of every run's journal rows. The lease is `BucketLease`.
public struct BucketState: Sendable {
    public let bucket: BackupBucket
    public let inventory: Inventory
    public let stateDirectory: String
    public let credentials: CredentialResolver

    public init(bucket: BackupBucket, inventory: Inventory, stateDirectory: String, credentials: CredentialResolver) {
        self.bucket = bucket
        self.inventory = inventory
        self.stateDirectory = stateDirectory
        self.credentials = credentials
    }

    /// The bucket's state for a step's run, or nil when the inventory keeps its state locally.
    public static func from(_ context: StepContext) async throws -> BucketState? {
        guard context.inventory.sharesStateInBucket else { return nil }
        return BucketState(bucket: try await BackupBucket.open(context.inventory, credentials: context.credentials), inventory: context.inventory,
                           stateDirectory: context.stateDirectory, credentials: context.credentials)
    }

    var store: SecretsStore { SecretsStore(inventory: inventory, stateDirectory: stateDirectory, credentials: credentials) }
    public var bundleKey: String { bucket.stateKey(inventory, "secrets.age") }

    /// A host without the bundle takes the bucket's; true when it did.
    @discardableResult
    public func pullBundle() async throws -> Bool {
        guard !store.exists, let (data, _) = try await bucket.s3.get(bundleKey) else { return false }
        let bytes: [UInt8]
        if inventory.secrets.encryption.value == .age {
            bytes = Array(data)
        } else {
            let identity = try await BackupIdentity.load(inventory, credentials: credentials)
            bytes = try AgeFile.decrypt(Array(data), identity: identity)
        }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        _ = try PrivateFile.create(bytes, at: store.path)
        return true
    }

    /// The bundle goes up once, create-only: a bundle in the bucket is never replaced.
    public func pushBundle() async throws {
        guard store.exists, try await bucket.s3.get(bundleKey) == nil, let data = FileManager.default.contents(atPath: store.path) else { return }
        let bytes = inventory.secrets.encryption.value == .age ? Array(data) : try AgeFile.encrypt(Array(data), to: bucket.spec.recipients.map(\.value))
        do {
            try await bucket.s3.put(bundleKey, Data(bytes), condition: .absent)
        } catch let error as S3Error where error.isPreconditionFailed {}
    }

    /// The cluster's version records (the Talos contract frozen at creation, the Kubernetes version it
    /// runs): small, not secret, and wrong if a second host guessed them from the inventory.
    static let records = ["version-contract.json", "kubernetes-versions.json"]

    /// Takes the bucket's version records this host lacks.
    public func pullRecords() async throws {
        for name in Self.records where !FileManager.default.fileExists(atPath: "\(stateDirectory)/\(name)") {
            guard let (data, _) = try await bucket.s3.get(bucket.stateKey(inventory, name)) else { continue }
            try PrivateFile.write(Array(data), to: "\(stateDirectory)/\(name)")
        }
    }

    /// Puts this host's version records in the bucket (they only move forward, by a run that held the lease).
    public func pushRecords() async throws {
        for name in Self.records {
            guard let data = FileManager.default.contents(atPath: "\(stateDirectory)/\(name)") else { continue }
            let key = bucket.stateKey(inventory, name)
            if let (current, _) = try await bucket.s3.get(key), current == data { continue }
            _ = try await bucket.s3.put(key, data, contentType: "application/json")
        }
    }

    /// A run's journal rows (the run and its attempts, no secrets: the journal holds none), create-only.
    public func archive(run runID: String, journal: Journal) async throws {
        let attempts = try journal.attempts(run: runID)
        let run = try journal.run(id: runID)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        struct Archive: Encodable { var run: Journal.Run?; var attempts: [Journal.Attempt] }
        try await bucket.s3.put(bucket.stateKey(inventory, "runs/\(runID).json"), try encoder.encode(Archive(run: run, attempts: attempts)),
                                condition: .absent, contentType: "application/json")
    }
}
