import Foundation
import ProvisionCore
import TalosKit

/// `talos.kubeconfig`: the admin kubeconfig from the first control plane that answers, written
/// 0600 to `<state>/kubeconfig`. It holds a cluster-admin key, so it is never printed.
public struct TalosKubeconfig: StepKind {
    public let info = StepKindInfo(name: "talos.kubeconfig", summary: "fetch the admin kubeconfig into the state directory",
                                   estimate: .seconds(3), scope: .cluster, defaultTimeout: .seconds(120))

    public init() {}

    static func path(_ context: StepContext) -> String { "\(context.stateDirectory)/kubeconfig" }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let path = Self.path(context)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("client-certificate-data:") else {
            return .pending("no kubeconfig at \(path)")
        }
        return .satisfied(["path": path])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let cp = try await Self.fetch(context)
        context.log("kubeconfig from \(cp) saved to \(Self.path(context))", step: step)
        return ["path": Self.path(context), "from": cp]
    }

    /// Saves the kubeconfig from the first control plane that gives one; returns which did.
    @discardableResult
    public static func fetch(_ context: StepContext) async throws -> String {
        let access = TalosAccess.from(context)
        var failures: [String] = []
        for cp in context.inventory.controlPlanes.map(\.name.value) {
            do {
                let kubeconfig = try await access.client(cp, .admin, timeout: .seconds(20)).kubeconfig()
                try PrivateFile.write(Array(kubeconfig.utf8), to: path(context))
                return cp
            } catch let error as TalosError where error.isTransient {
                failures.append("\(cp): \(error)")
            }
        }
        throw StepError.transient("no control plane gave a kubeconfig: " + failures.joined(separator: "; "))
    }
}

/// `talos.etcd-snapshot`: streams an etcd snapshot from a healthy control plane (the step's node,
/// else the first that answers) to `<state>/snapshots/`, 0600. Taken on every run: it is the way
/// back if what follows goes wrong. When no etcd answers because a reset is under way (a resumed
/// safe reset of etcd's last member), the snapshot taken before that reset is kept instead.
public struct TalosEtcdSnapshot: StepKind {
    public let info = StepKindInfo(name: "talos.etcd-snapshot", summary: "save an etcd snapshot to the state directory",
                                   estimate: .seconds(10), scope: .any, defaultTimeout: .seconds(600), everyRun: true)

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        .pending("a snapshot is taken on every run")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let directory = "\(context.stateDirectory)/snapshots"
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        do {
            let taken = try await EtcdSnapshotSource.take(context, preferring: step.node, to: directory, name: "etcd-\(stamp)", step: step)
            return ["path": taken.path, "bytes": "\(taken.bytes)", "from": taken.from]
        } catch let error as StepError {
            // A resumed safe reset of etcd's last member: etcd is gone until the snapshot taken
            // before the reset brings it back, and that one is kept for it.
            guard let reset = try context.journal?.disruptions().first(where: { $0.action == "reset" }),
                  let kept = try? TalosEtcdReseed.snapshot(before: reset.startedAt, context) else { throw error }
            context.log("no etcd to snapshot while \(reset.node)'s reset is under way: \(URL(fileURLWithPath: kept).lastPathComponent), taken before it, is kept", step: step)
            return ["path": kept, "kept": "true"]
        }
    }
}

/// Where snapshots come from: the first control plane (the preferred one first) whose etcd gives a
/// whole, hash-checked snapshot, streamed to `DIRECTORY/NAME-CP.db` (0600 in a 0700 directory).
enum EtcdSnapshotSource {
    static func take(_ context: StepContext, preferring: String?, to directory: String, name: String,
                     step: StepInstance) async throws -> (path: String, bytes: Int, from: String) {
        let access = TalosAccess.from(context)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let controlPlanes = context.inventory.controlPlanes.map(\.name.value)
        let sources = controlPlanes.filter { $0 == preferring } + controlPlanes.filter { $0 != preferring }
        var failures: [String] = []
        for cp in sources {
            let file = URL(fileURLWithPath: "\(directory)/\(name)-\(cp).db")
            do {
                let size = try await access.client(cp, .admin).etcdSnapshot(to: file)
                context.log("etcd snapshot from \(cp): \(size) bytes, SHA-256 checked", step: step)
                return (file.path, size, cp)
            } catch let error as TalosError where error.isTransient {
                failures.append("\(cp): \(error)")
            }
        }
        throw StepError.transient("no control plane gave an etcd snapshot: " + failures.joined(separator: "; "))
    }
}
