import Foundation
import ProvisionCore
import TalosKit

/// etcd bootstrapped from a snapshot on one control plane, in the order Talos documents: EtcdRecover
/// uploads it (retried while the node is not ready for it), then Bootstrap with `recover_etcd`. The
/// restore and the safe reset of etcd's last member both go this way.
enum EtcdSeed {
    /// Uploads `path` to `node`, calls `beforeBootstrap` (a caller's record that the bootstrap may
    /// have landed), then bootstraps. Returns what happened, for the log.
    static func recover(_ node: String, from path: String, step: StepInstance, context: StepContext,
                        beforeBootstrap: () throws -> Void = {}) async throws -> String {
        let access = TalosAccess.from(context)
        _ = try await waitFor("\(node) to take the snapshot", interval: access.pollInterval, step: step, context: context) { () -> Bool? in
            do {
                try await access.client(node, .admin, timeout: .seconds(60)).etcdRecover(from: URL(fileURLWithPath: path))
                return true
            } catch TalosError.notReady { return nil }
        }
        try beforeBootstrap()
        let outcome = try await access.client(node, .admin, timeout: .seconds(60)).bootstrap(recoverEtcd: true)
        return "\(node): etcd bootstrapped from the snapshot" + (outcome == .alreadyBootstrapped ? " (it already had data: an earlier call landed)" : "")
    }
}

/// `talos.etcd-reseed`: waits until the reset control plane's etcd runs again. It joins by itself
/// while another control plane holds etcd's data. When none does (it was etcd's last member, reset
/// with `--force` without leaving), Talos waits for a Bootstrap that never comes on its own: the
/// node is bootstrapped from the snapshot this run took before the reset, so the cluster comes
/// back as it was then, not empty. Never while another control plane does not answer: it may hold
/// the data, and a second bootstrap would split etcd in two.
public struct TalosEtcdReseed: StepKind {
    public let info = StepKindInfo(name: "talos.etcd-reseed", summary: "wait for the node's etcd; bootstrap it from the run's snapshot when no control plane holds etcd's data",
                                   estimate: .seconds(20), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        guard context.inventory.node(named: node)?.role.value == .controlplane else { return .satisfied(["etcd": "not a control plane"]) }
        let state = try? await TalosAccess.from(context).client(node, .admin, timeout: .seconds(5)).etcdServiceState()
        return state == "Running" ? .satisfied(["etcd": "running"]) : .pending("\(node)'s etcd is \(state ?? "not answering")")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        var alone = 0
        var said = ""
        return try await waitFor("\(node)'s etcd", interval: access.pollInterval, step: step, context: context) { () -> StepOutputs? in
            let state = try await access.client(node, .admin, timeout: .seconds(5)).etcdServiceState()
            if state == "Running" { return ["etcd": "running"] }
            guard state == "Preparing" else { return nil }
            let holders = await Self.dataHolders(besides: node, context)
            let note = holders.isEmpty ? "" : "\(node) waits to join etcd (\(holders.joined(separator: ", ")))"
            if note != said, !note.isEmpty { context.log(note, step: step) }
            said = note
            // Seen alone twice in a row: a control plane with data passes through Preparing too.
            alone = holders.isEmpty ? alone + 1 : 0
            guard alone >= 2 else { return nil }
            let snapshot = try Self.snapshot(before: TalosReset.underWay(node, context)?.startedAt, context)
            context.log("\(node) waits for a bootstrap and no other control plane holds etcd's data: bootstrapping it from \(URL(fileURLWithPath: snapshot).lastPathComponent), taken before the reset",
                        level: .warning, step: step)
            context.log(try await EtcdSeed.recover(node, from: snapshot, step: step, context: context), step: step)
            return ["etcd": "bootstrapped", "snapshot": snapshot]
        }
    }

    /// The other control planes that hold etcd's data, or may (they do not answer): each is named
    /// with its state. Empty when every other one answers Preparing (no data), or there is none.
    static func dataHolders(besides node: String, _ context: StepContext) async -> [String] {
        var holders: [String] = []
        for cp in context.inventory.controlPlanes.map(\.name.value) where cp != node {
            let state = try? await TalosAccess.from(context).client(cp, .admin, timeout: .seconds(5)).etcdServiceState()
            if state != "Preparing" { holders.append("\(cp): \(state.map { "etcd \($0)" } ?? "not answering")") }
        }
        return holders
    }

    /// The newest snapshot in the state directory taken before the reset (by `talos.etcd-snapshot`).
    static func snapshot(before reset: Date?, _ context: StepContext) throws -> String {
        let directory = "\(context.stateDirectory)/snapshots"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let taken = files.filter { $0.hasPrefix("etcd-") && $0.hasSuffix(".db") }.compactMap { name -> (String, Date)? in
            let path = "\(directory)/\(name)"
            guard let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
            return reset.map { date <= $0 } ?? true ? (path, date) : nil
        }
        guard let newest = taken.max(by: { $0.1 < $1.1 }) else {
            throw StepError.permanent("no etcd snapshot taken before the reset is in \(directory): etcd cannot be brought back from this run's; "
                + "`provision restore \(context.inventory.name) --from latest` restores the newest backup")
        }
        return newest.0
    }
}
