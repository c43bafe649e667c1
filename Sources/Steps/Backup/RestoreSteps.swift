import Foundation
import ProvisionCore
import TalosKit

/// A restore under way is one journal record (the disruption table's `(restore)` row): while it
/// exists the checks that guard a restore stand aside, so a resumed restore goes on even though
/// etcd, once recovered, has quorum again. Its phase moves `checked` → `recovering` → `recovered`.
enum RestoreRecord {
    static let key = "(restore)"

    static func current(_ context: StepContext) -> Journal.Disruption? {
        try? context.journal?.disruption(node: key)
    }

    static func move(_ context: StepContext, phase: String, detail: String) throws {
        try context.journal?.recordDisruption(node: key, run: context.runID, action: "restore", bootBefore: "", detail: detail, phase: phase)
    }

    static func directory(_ context: StepContext) -> String { "\(context.stateDirectory)/restore" }
    static func snapshotPath(_ context: StepContext) -> String { "\(directory(context))/snapshot.db" }
}

/// `etcd.restore-check`: a restore throws away everything written since the backup, so it is
/// refused (exit 3, nothing touched) while etcd still has quorum: some control plane answers for
/// its members. `--force` overrides. Satisfied when a restore is already under way.
public struct EtcdRestoreCheck: StepKind {
    public let info = StepKindInfo(name: "etcd.restore-check", summary: "refuse a restore while etcd still has quorum",
                                   estimate: .seconds(3), scope: .cluster, defaultTimeout: .seconds(120), parameters: ["force"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        if let record = RestoreRecord.current(context) { return .satisfied(["resuming": record.runID, "phase": record.phase]) }
        let access = TalosAccess.from(context)
        var alive: [String] = []
        for cp in context.inventory.controlPlanes.map(\.name.value) {
            guard let members = try? await access.client(cp, .admin, timeout: .seconds(5)).etcdMembers(), !members.isEmpty else { continue }
            alive.append("\(cp) (\(members.count) members)")
        }
        if !alive.isEmpty {
            let why = "etcd has quorum: \(alive.joined(separator: ", ")) answer for its members; a restore would throw away everything written since the backup"
            guard context.arguments["force"] == "true" else {
                throw StepError.refused("\(why). Nothing was changed; if quorum can be saved, save it instead (--force restores anyway)")
            }
            context.log("--force: \(why)", level: .warning, step: step)
        }
        return .pending("no control plane answers for etcd's members: quorum is lost")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        try RestoreRecord.move(context, phase: "checked", detail: context.arguments["from"] ?? "latest")
        return ["quorum": "lost"]
    }
}

/// `backup.fetch`: the snapshot to restore, in `<state>/restore/snapshot.db` (0600), decrypted and
/// checked as a fresh snapshot is (size modulo 512 is 32, the appended SHA-256). `--from` names a
/// set in the bucket (`latest`, its name or time) or a local file (a snapshot, or its `.age`).
/// A set must be this cluster's (its manifest's cluster ID is the bundle's) and every object's
/// SHA-256 must match the manifest.
public struct BackupFetch: StepKind {
    public let info = StepKindInfo(name: "backup.fetch", summary: "download, decrypt and check the etcd snapshot to restore",
                                   estimate: .seconds(10), scope: .cluster, defaultTimeout: .seconds(1800), parameters: ["from"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let path = RestoreRecord.snapshotPath(context)
        if FileManager.default.fileExists(atPath: path), let chosen = try? String(contentsOfFile: path + ".from", encoding: .utf8) {
            return .satisfied(["path": path, "from": chosen])
        }
        return .pending("fetch \(context.arguments["from"] ?? "latest")")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let from = context.arguments["from"] ?? "latest"
        let directory = RestoreRecord.directory(context)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = RestoreRecord.snapshotPath(context)
        let chosen: String
        if FileManager.default.fileExists(atPath: from) {
            try await Self.open(file: from, to: path, context: context)
            chosen = from
        } else {
            let bucket = try await BackupBucket.open(context.inventory, credentials: context.credentials)
            let set = try await bucket.resolve(from)
            guard let manifest = try await bucket.manifest(set.name) else { throw StepError.permanent("set \(set.name) has no manifest") }
            let access = TalosAccess.from(context)
            let bundle = try await access.bundle()
            guard manifest.belongs(clusterID: bundle.clusterID, caPEM: try await access.credentials().ca) else {
                throw StepError.refused("set \(set.name) is a backup of another cluster (cluster ID \(manifest.clusterID.isEmpty ? "unrecorded, OS CA differs" : manifest.clusterID.prefix(8) + "…"), this one is \(bundle.clusterID.prefix(8))…); nothing was changed")
            }
            let download = "\(directory)/etcd.snapshot.age"
            try await BackupVerifier(bucket: bucket, identity: try await BackupIdentity.load(context.inventory, credentials: context.credentials))
                .fetch(set: set.name, object: "etcd.snapshot.age", manifest: manifest, to: download)
            try await Self.open(file: download, to: path, context: context)
            try? FileManager.default.removeItem(atPath: download)
            chosen = set.name
            context.log("set \(set.name) (\(manifest.createdAt.formatted(.iso8601)), snapshot from \(manifest.source), raft index \(manifest.etcdRevision.map(String.init) ?? "?")) fetched and checked", step: step)
        }
        try PrivateFile.write(Array(chosen.utf8), to: path + ".from")
        return ["path": path, "from": chosen]
    }

    /// A local snapshot, encrypted or not, checked into `path`.
    static func open(file: String, to path: String, context: StepContext) async throws {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw StepError.permanent("cannot read \(file)") }
        defer { try? handle.close() }
        let encrypted = String(decoding: (try? handle.read(upToCount: 21)) ?? Data(), as: UTF8.self) == "age-encryption.org/v1"
        let identity = encrypted ? try await BackupIdentity.load(context.inventory, credentials: context.credentials) : nil
        try handle.seek(toOffset: 0)
        do {
            _ = try EtcdSnapshotWriter.write(to: path) { sink in
                if let identity { return try AgeFile.decrypt(file: file, identity: identity, into: sink) }
                while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { try sink(chunk) }
            }
        } catch {
            throw StepError.permanent("the snapshot from \(file) cannot be restored: \(error)")
        }
    }
}

/// `talos.etcd-wipe`: on a control plane whose etcd has data of the lost cluster, EPHEMERAL is
/// wiped (not gracefully: there is no quorum to leave) and the node reboots with its config; it
/// comes back with etcd Preparing. A `GatedDisruption` without gate or drain, so it is never sent
/// twice. Satisfied when etcd is already Preparing, or the recovery is done.
public struct TalosEtcdWipe: StepKind {
    public let info = StepKindInfo(name: "talos.etcd-wipe", summary: "wipe EPHEMERAL on a control plane whose etcd is broken (etcd then Preparing)",
                                   estimate: .seconds(60), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        TalosReboot.disruptionSlot(step.node, context)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if RestoreRecord.current(context).map({ ["recovering", "recovered"].contains($0.phase) }) == true { return .satisfied(["etcd": "recovered"]) }
        if GatedDisruption.underWay(node, context)?.action == "etcd-wipe" { return .pending("\(node): its wipe was sent; waiting for it to come back") }
        let state = try await TalosAccess.from(context).client(node, .admin, timeout: .seconds(5)).etcdServiceState()
        if state == "Preparing" { return .satisfied(["etcd": "Preparing"]) }
        return .pending("\(node): etcd is \(state ?? "absent"); wipe EPHEMERAL and reboot")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        var disruption = GatedDisruption(step: step, context: context, node: node, action: "etcd-wipe", detail: "EPHEMERAL, not graceful")
        disruption.sequence = .init(gate: nil, drain: false, finish: false)
        let access = TalosAccess.from(context)
        let outputs = try await disruption.run(send: { client in
            "EPHEMERAL wiped, rebooting (actor \(try await client.resetEphemeral()))"
        }, back: { bootBefore in
            let client = try await access.client(node, .admin, timeout: .seconds(5))
            guard try await client.bootID() != bootBefore, try await client.etcdServiceState() == "Preparing" else { return nil }
            return ["etcd": "Preparing"]
        })
        try context.journal?.endDisruption(node: node)
        return outputs
    }
}

/// `talos.etcd-recover`: once etcd is Preparing on every control plane, the snapshot goes to
/// exactly one (the `node` parameter, else the first) with EtcdRecover, then Bootstrap with
/// `recover_etcd` there; the others join by themselves. The restore record moves to `recovering`
/// before the bootstrap is sent, so a resumed run never bootstraps a second time: it finds etcd
/// running, or the node still Preparing (the call never landed) and only then sends again.
public struct TalosEtcdRecover: StepKind {
    public let info = StepKindInfo(name: "talos.etcd-recover", summary: "upload the snapshot and bootstrap etcd from it on one control plane",
                                   estimate: .seconds(30), scope: .cluster, defaultTimeout: .seconds(900), parameters: ["node"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        if RestoreRecord.current(context)?.phase == "recovered" { return .satisfied(["recovered": "yes"]) }
        return .pending("restore the snapshot on \(target(step, context))")
    }

    func target(_ step: StepInstance, _ context: StepContext) -> String {
        step.parameters.string("node") ?? context.inventory.controlPlanes.first?.name.value ?? ""
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let access = TalosAccess.from(context)
        let node = target(step, context)
        let path = RestoreRecord.snapshotPath(context)
        if RestoreRecord.current(context)?.phase == "recovering", try await running(node, access) {
            context.log("\(node): etcd already runs from the snapshot sent in an earlier run; not bootstrapping again", step: step)
        } else {
            let controlPlanes = context.inventory.controlPlanes.map(\.name.value)
            _ = try await waitFor("etcd Preparing on every control plane", interval: access.pollInterval, step: step, context: context) {
                for cp in controlPlanes where try await access.client(cp, .admin, timeout: .seconds(5)).etcdServiceState() != "Preparing" { return nil as Bool? }
                return true
            }
            context.log(try await EtcdSeed.recover(node, from: path, step: step, context: context) {
                try RestoreRecord.move(context, phase: "recovering", detail: node)
            }, step: step)
        }
        try RestoreRecord.move(context, phase: "recovered", detail: node)
        return ["node": node]
    }

    func running(_ node: String, _ access: TalosAccess) async throws -> Bool {
        (try? await access.client(node, .admin, timeout: .seconds(5)).etcdServiceState()) == "Running"
    }
}

/// `restore.finish`: the Kubernetes API answers again (it reads the restored objects); then the
/// restore record and the fetched snapshot are removed. What is left to converge (Cilium, the
/// foundation) is `provision up`'s job.
public struct RestoreFinish: StepKind {
    public let info = StepKindInfo(name: "restore.finish", summary: "wait for the Kubernetes API, then close the restore",
                                   estimate: .seconds(20), scope: .cluster, defaultTimeout: .seconds(900))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        RestoreRecord.current(context) == nil ? .satisfied([:]) : .pending("wait for the Kubernetes API")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let kube = try KubeAccess.from(context).kube()
        let uid = try await waitFor("the Kubernetes API", interval: TalosAccess.from(context).pollInterval, step: step, context: context) { () -> String? in
            do { return try await kube.get("v1", "Namespace", name: "kube-system")?[path: "metadata.uid"]?.string } catch { return nil }
        }
        try? FileManager.default.removeItem(atPath: RestoreRecord.directory(context))
        try context.journal?.endDisruption(node: RestoreRecord.key)
        context.log("the Kubernetes API answers (kube-system \(uid.prefix(8))…); run `provision up` to converge the rest", step: step)
        return ["kubeSystemUID": uid]
    }
}
