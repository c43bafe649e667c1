import Crypto
import Foundation
import ProvisionCore
import TalosKit

/// `backup.take`: one backup set in the inventory's bucket. The etcd snapshot is streamed from a
/// healthy control plane and hash-checked, encrypted with age to the backup's recipients and
/// uploaded (in parts when large) beside the secrets bundle and every node's rendered config (age
/// too), then the manifest. Nothing is held whole in memory; the clear snapshot lives only in the
/// 0700 work directory and is deleted once encrypted. If any upload fails, what this run put in the
/// bucket is deleted again: no partial set stays behind.
public struct BackupTake: StepKind {
    public let info = StepKindInfo(name: "backup.take", summary: "snapshot etcd and upload an encrypted backup set (snapshot, secrets, configs, manifest)",
                                   estimate: .seconds(15), scope: .cluster, defaultTimeout: .seconds(1800), everyRun: true)

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        .pending("a backup set is taken on every run")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let bucket = try await BackupBucket.open(context.inventory, credentials: context.credentials)
        // A store that is not there, or keys it refuses, fail here, before etcd is touched.
        try await bucket.s3.checkBucket()
        let access = TalosAccess.from(context)
        let now = Date()
        let set = BackupBucket.setName(for: now)
        let work = "\(context.stateDirectory)/backups/work-\(set)"
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/configs", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let recipients = bucket.spec.recipients.map(\.value)

        let snapshot = try await EtcdSnapshotSource.take(context, preferring: step.node, to: work, name: "etcd", step: step)
        let status = try? await access.client(snapshot.from, .admin, timeout: .seconds(5)).etcdStatus()
        let members = try? await access.client(snapshot.from, .admin, timeout: .seconds(5)).etcdMembers()
        try AgeFile.encrypt(file: snapshot.path, to: "\(work)/etcd.snapshot.age", recipients: recipients)
        try FileManager.default.removeItem(atPath: snapshot.path)

        let store = SecretsStore(inventory: context.inventory, stateDirectory: context.stateDirectory, credentials: context.credentials)
        var names = ["etcd.snapshot.age"]
        // A backup host with only an etcd-backup talosconfig and no bundle uploads the snapshot alone.
        let bundle = access.usesSuppliedCredentials && !store.exists ? nil : try await access.bundle()
        if bundle == nil {
            context.log("no secrets bundle on this host: the set holds the snapshot only (restore takes the bundle from an older set or the state directory)", level: .warning, step: step)
        } else {
            if context.inventory.secrets.encryption.value == .age {
                // Already age, to the secrets' recipients: stored as it is (a second host decrypts it with the same identity).
                try FileManager.default.copyItem(atPath: store.path, toPath: "\(work)/\(BackupSet.secrets)")
            } else {
                try AgeFile.encrypt(file: store.path, to: "\(work)/\(BackupSet.secrets)", recipients: recipients)
            }
            names.append(BackupSet.secrets)
            for node in context.inventory.nodes.map(\.name.value) {
                let config = try await access.config(for: node)
                try PrivateFile.write(try AgeFile.encrypt(Array(config.utf8), to: recipients), to: "\(work)/configs/\(node).yaml.age")
                names.append("configs/\(node).yaml.age")
            }
        }

        var uploaded: [String] = []
        do {
            var objects: [BackupManifest.Object] = []
            for name in names {
                let path = "\(work)/\(name)"
                let (bytes, digest) = try Self.digest(path)
                try await bucket.s3.upload(file: path, key: bucket.key(set, name))
                uploaded.append(bucket.key(set, name))
                objects.append(.init(name: name, bytes: bytes, sha256: digest))
            }
            let manifest = BackupManifest(set: set, cluster: context.inventory.name, clusterID: bundle?.clusterID ?? "",
                                          osCA: BackupManifest.fingerprint(caPEM: try await access.credentials().ca), createdAt: now, source: snapshot.from,
                                          etcdRevision: status?.raftIndex, etcdMembers: members?.count, snapshotBytes: snapshot.bytes,
                                          talosVersion: context.inventory.cluster.talosVersion.value,
                                          kubernetesVersion: KubernetesVersions.load(stateDirectory: context.stateDirectory)?.version ?? context.inventory.cluster.kubernetesVersion.value,
                                          recipients: recipients, objects: objects)
            // Create-only: two hosts backing up in the same millisecond never merge into one set.
            try await bucket.s3.put(bucket.key(set, "manifest.json"), try manifest.encoded(), condition: .absent, contentType: "application/json")
            let total = objects.reduce(0) { $0 + $1.bytes }
            context.log("backup set \(set): \(objects.count) objects, \(SizeText.format(total)) to \(bucket.s3.describe(bucket.key(set, "")))", step: step)
            return ["set": set, "bytes": "\(total)", "from": snapshot.from, "snapshotBytes": "\(snapshot.bytes)"]
        } catch {
            for key in uploaded { try? await bucket.s3.delete(key) }
            throw error
        }
    }

    /// Size and SHA-256 of a file, read a megabyte at a time.
    static func digest(_ path: String) throws -> (Int, String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StepError.permanent("cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += chunk.count
        }
        return (size, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }
}

/// `backup.prune`: retention, after a successful upload only (it `needs` the take): keeps the
/// newest `keepLast` sets and one per day for `keepDaily` days, never the newest set.
public struct BackupPrune: StepKind {
    public let info = StepKindInfo(name: "backup.prune", summary: "delete backup sets retention no longer keeps",
                                   estimate: .seconds(2), scope: .cluster, defaultTimeout: .seconds(600))

    public init() {}

    func expired(_ bucket: BackupBucket) async throws -> [BackupSet] {
        BackupRetention.expired(try await bucket.sets(), keepLast: bucket.spec.keepLast, keepDaily: bucket.spec.keepDaily)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let bucket = try await BackupBucket.open(context.inventory, credentials: context.credentials)
        let expired = try await expired(bucket)
        if expired.isEmpty, !context.dryRun { return .satisfied(["deleted": "0"]) }
        return .pending(expired.isEmpty ? "retention runs after the new set is uploaded" : "delete \(expired.count) set(s) retention no longer keeps")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let bucket = try await BackupBucket.open(context.inventory, credentials: context.credentials)
        let expired = try await expired(bucket)
        for set in expired {
            try await bucket.delete(set)
            context.log("retention: deleted set \(set.name)\(set.complete ? "" : " (incomplete)")", step: step)
        }
        return ["deleted": "\(expired.count)"]
    }
}
