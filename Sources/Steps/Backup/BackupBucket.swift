import Crypto
import Foundation
import Providers
import ProvisionCore

/// The inventory's backup store as provision lays it out: each backup set under
/// `PREFIX/backups/SET/` holds the age-encrypted etcd snapshot, secrets bundle and machine configs,
/// and a `manifest.json` written last, so a set without one is an upload that did not finish.
public struct BackupBucket: Sendable {
    public let spec: BackupSpec
    public let s3: S3Client

    public init(spec: BackupSpec, s3: S3Client) {
        self.spec = spec
        self.s3 = s3
    }

    /// The store the inventory names, with its keys resolved (and registered with the redactor).
    public static func open(_ inventory: Inventory, credentials: CredentialResolver) async throws -> BackupBucket {
        guard let spec = inventory.backup else {
            throw StepError.permanent("inventory \(inventory.name) has no `backup:` section; add one naming the S3-compatible store (see `provision backup --help`)")
        }
        let keys = AWSCredentials(accessKeyID: try await credentials.resolve(spec.accessKeyID.value),
                                  secretAccessKey: try await credentials.resolve(spec.secretAccessKey.value))
        let s3 = S3Client(endpoint: spec.endpoint.value, region: spec.region.value, bucket: spec.bucket.value, pathStyle: spec.pathStyle, credentials: keys)
        return BackupBucket(spec: spec, s3: s3)
    }

    var root: String { spec.prefix.isEmpty ? "" : spec.prefix + "/" }
    var setsPrefix: String { root + "backups/" }

    public func key(_ set: String, _ object: String) -> String { setsPrefix + set + "/" + object }

    /// Where an inventory's shared state lives (`state.backend: s3`): the lease, the bundle, runs.
    public func stateKey(_ inventory: Inventory, _ name: String) -> String { root + "state/\(inventory.name)/" + name }

    /// A name that sorts newest first (S3 lists keys in ascending order: the milliseconds left
    /// until 2286), then the time readable: `8203762214999-20261202T183005Z`.
    public static func setName(for date: Date) -> String {
        let inverted = String(9_999_999_999_999 - Int(date.timeIntervalSince1970 * 1000))
        return String(repeating: "0", count: max(0, 13 - inverted.count)) + inverted + "-" + stamp(date)
    }

    public static func date(ofSet name: String) -> Date? {
        guard let number = Int(name.prefix(13)), name.count > 14 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(9_999_999_999_999 - number) / 1000)
    }

    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// Every set in the bucket, newest first.
    public func sets() async throws -> [BackupSet] {
        var grouped: [String: [S3Client.Object]] = [:]
        for object in try await s3.list(prefix: setsPrefix) {
            let rest = object.key.dropFirst(setsPrefix.count)
            guard let slash = rest.firstIndex(of: "/") else { continue }
            grouped[String(rest[..<slash]), default: []].append(object)
        }
        return grouped.compactMap { name, objects in
            Self.date(ofSet: name).map { BackupSet(name: name, date: $0, objects: objects, complete: objects.contains { $0.key.hasSuffix("/manifest.json") }) }
        }.sorted { $0.name < $1.name }
    }

    public func manifest(_ set: String) async throws -> BackupManifest? {
        guard let (data, _) = try await s3.get(key(set, "manifest.json")) else { return nil }
        do { return try BackupManifest.decode(data) } catch {
            throw StepError.permanent("\(s3.describe(key(set, "manifest.json"))) is not a provision backup manifest: \(error)")
        }
    }

    /// `latest`, a whole set name, or its time (`20261202T183005Z`): the newest complete match.
    /// `latest` or a set's name (or its time part); with `holding`, `latest` is the newest set that
    /// has that object (a snapshot-only set holds no secrets bundle).
    public func resolve(_ reference: String, holding object: String? = nil) async throws -> BackupSet {
        let sets = try await sets()
        let complete = sets.filter(\.complete)
        let usable = object.map { name in complete.filter { $0.holds(name) } } ?? complete
        let found = reference == "latest" ? usable.first : complete.first { $0.name == reference || $0.name.hasSuffix("-" + reference) }
        if let object, reference == "latest", found == nil, !complete.isEmpty {
            throw StepError.permanent("no backup set in \(s3.describe(setsPrefix)) holds \(object) (each was taken by a host with only an etcd-backup talosconfig); take one with `provision backup` on a host that has the bundle")
        }
        guard let found else {
            let names = complete.prefix(5).map(\.name).joined(separator: ", ")
            if complete.isEmpty { throw StepError.permanent("\(s3.describe(setsPrefix)) holds no complete backup set; take one with `provision backup`") }
            throw StepError.permanent("no complete backup set `\(reference)` in \(s3.describe(setsPrefix)); newest: \(names) (`provision backup list` shows all)")
        }
        return found
    }

    /// Removes a set's objects, the manifest first, so a set half-deleted reads as incomplete.
    public func delete(_ set: BackupSet) async throws {
        for object in set.objects.sorted(by: { a, _ in a.key.hasSuffix("/manifest.json") }) { try await s3.delete(object.key) }
    }
}

public struct BackupSet: Sendable, Equatable {
    public var name: String
    public var date: Date
    public var objects: [S3Client.Object]
    /// The manifest is there: every object was uploaded.
    public var complete: Bool

    public var bytes: Int { objects.reduce(0) { $0 + $1.size } }
    /// The secrets bundle's object in a set.
    public static let secrets = "secrets.yaml.age"

    /// Whether the set has the object `name` (e.g. `secrets.yaml.age`, `configs/cp1.yaml.age`).
    public func holds(_ name: String) -> Bool { objects.contains { $0.key.hasSuffix("/" + name) } }

    /// The set has the secrets bundle (a set taken with only an etcd-backup talosconfig does not).
    public var holdsSecrets: Bool { holds(Self.secrets) }
}

/// What a set holds and how to check it: written last, in clear (it names no secret), so `backup
/// list` needs no identity.
public struct BackupManifest: Codable, Sendable, Equatable {
    public struct Object: Codable, Sendable, Equatable {
        /// Relative to the set, e.g. `etcd.snapshot.age`, `configs/cp1.yaml.age`.
        public var name: String
        public var bytes: Int
        /// Of the object as stored (encrypted).
        public var sha256: String
    }

    public var format = "provision-backup/1"
    public var set: String
    public var cluster: String
    /// The Talos cluster ID from the secrets bundle: a restore checks it is this cluster's.
    /// Empty when the set was taken without the bundle (an etcd-backup talosconfig): then `osCA`
    /// identifies the cluster.
    public var clusterID: String
    /// SHA-256 of the cluster's OS CA certificate, which every talosconfig carries.
    public var osCA: String?
    public var createdAt: Date
    /// The control plane the snapshot came from, its raft index and member count then.
    public var source: String
    public var etcdRevision: UInt64?
    public var etcdMembers: Int?
    public var snapshotBytes: Int
    public var talosVersion: String
    public var kubernetesVersion: String
    public var recipients: [String]
    public var objects: [Object]

    /// The OS CA's fingerprint as `osCA` records it (whitespace ignored, so PEM line endings do not matter).
    public static func fingerprint(caPEM: String) -> String {
        SHA256.hash(data: Data(caPEM.filter { !$0.isWhitespace }.utf8)).hexString
    }

    /// Whether this set is a backup of the cluster whose bundle is `clusterID` with OS CA `caPEM`.
    public func belongs(clusterID id: String, caPEM: String) -> Bool {
        if !clusterID.isEmpty { return clusterID == id }
        return osCA == Self.fingerprint(caPEM: caPEM)
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> BackupManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(BackupManifest.self, from: data)
    }
}
