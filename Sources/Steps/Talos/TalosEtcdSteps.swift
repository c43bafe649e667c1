import Foundation
import ProvisionCore
import TalosKit

/// etcd as every control plane reports it, judged as Talos does: where the etcd service runs, its
/// member list; where it does not (before a bootstrap it sits Preparing, waiting to be bootstrapped
/// or to join), its data directory, which Talos' Bootstrap itself requires empty. Anything a node
/// cannot tell (unreachable, no quorum, an unreadable directory) is an error, never "no members":
/// bootstrap decisions rest on it.
struct EtcdView {
    var membersByNode: [String: [Machine_EtcdMember]] = [:]
    /// Control planes whose etcd does not run but whose data directory is not empty: what it holds.
    var dataByNode: [String: [String]] = [:]

    var anyMembers: Bool { membersByNode.values.contains { !$0.isEmpty } }

    static func read(_ context: StepContext, access: TalosAccess) async throws -> EtcdView {
        var view = EtcdView()
        for cp in context.inventory.controlPlanes.map(\.name.value) {
            let client = try await access.client(cp, .admin, timeout: .seconds(5))
            if try await client.etcdServiceState() == "Running" {
                view.membersByNode[cp] = try await client.etcdMembers()
            } else {
                view.membersByNode[cp] = []
                let entries = try await client.etcdDataEntries()
                if !entries.isEmpty { view.dataByNode[cp] = entries }
            }
        }
        return view
    }

    /// Why bootstrapping `node` would make a second etcd cluster, or nil when no control plane has any.
    func conflict(bootstrapping node: String) -> String? {
        if let (other, members) = membersByNode.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isEmpty }) {
            return "\(other) already reports \(members.count) etcd member(s); bootstrapping \(node) would create a second cluster"
        }
        if let (other, entries) = dataByNode.sorted(by: { $0.key < $1.key }).first {
            return "\(other)'s etcd data directory is not empty (/var/lib/etcd holds \(entries.joined(separator: ", "))) though etcd does not run there: "
                + "it belongs to a cluster that was bootstrapped before; bootstrapping \(node) would create a second one. "
                + "Find out why etcd does not start there (talosctl -n \(other) service etcd; talosctl -n \(other) logs etcd), or restore from a backup"
        }
        return nil
    }
}

/// `talos.bootstrap`: creates etcd on exactly one control plane (the `node` parameter, else the
/// first in the inventory). Satisfied when any control plane already reports members; refused when
/// a control plane holds etcd data without running it, or members appear between the check and the
/// call; AlreadyExists from the node counts as done.
public struct TalosBootstrap: StepKind {
    public let info = StepKindInfo(name: "talos.bootstrap", summary: "bootstrap etcd on one control plane (idempotent, refused if members exist)",
                                   estimate: .seconds(10), scope: .cluster, defaultTimeout: .seconds(300), parameters: ["node"])

    public init() {}

    func target(_ step: StepInstance, _ context: StepContext) throws -> String {
        if let name = step.parameters.string("node") { return name }
        guard let first = context.inventory.controlPlanes.first?.name.value else { throw StepError.permanent("the inventory has no control plane to bootstrap") }
        return first
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let view = try await EtcdView.read(context, access: TalosAccess.from(context))
        if view.anyMembers {
            let count = view.membersByNode.values.map(\.count).max() ?? 0
            return .satisfied(["members": "\(count)"])
        }
        if let conflict = view.conflict(bootstrapping: try target(step, context)) { return .pending(conflict) }
        return .pending("no control plane reports etcd members")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let access = TalosAccess.from(context)
        let node = try target(step, context)
        // Check again right before the call: bootstrapping a second node would split etcd in two.
        let view = try await EtcdView.read(context, access: access)
        if let conflict = view.conflict(bootstrapping: node) { throw StepError.refused(conflict) }
        let outcome = try await access.client(node, .admin, timeout: .seconds(30)).bootstrap()
        context.log(outcome == .bootstrapped ? "etcd bootstrapped on \(node)" : "\(node) already has etcd data: bootstrap was done before", step: step)
        return ["node": node, "outcome": outcome == .bootstrapped ? "bootstrapped" : "already-bootstrapped"]
    }
}

/// `talos.await-etcd`: every control plane in the inventory is an etcd member, started (named),
/// not a learner, and reports no errors.
public struct TalosAwaitEtcd: StepKind {
    public let info = StepKindInfo(name: "talos.await-etcd", summary: "wait until every control plane is a healthy etcd member",
                                   estimate: .seconds(120), scope: .cluster, mutates: false, defaultTimeout: .seconds(900))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        switch try await check(context) {
        case let .success(outputs): return .satisfied(outputs)
        case let .failure(reason): return .pending(reason.description)
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let access = TalosAccess.from(context)
        var last = ""
        return try await waitFor("etcd members", interval: access.pollInterval, step: step, context: context) {
            switch try await check(context) {
            case let .success(outputs): return outputs
            case let .failure(reason):
                if reason.description != last { context.log(reason.description, step: step) }
                last = reason.description
                return nil
            }
        }
    }

    struct Reason: Error, CustomStringConvertible { let description: String }

    func check(_ context: StepContext) async throws -> Result<StepOutputs, Reason> {
        let access = TalosAccess.from(context)
        let wanted = context.inventory.controlPlanes.map(\.hostname)
        var members: [Machine_EtcdMember] = []
        for cp in context.inventory.controlPlanes.map(\.name.value) {
            let client = try await access.client(cp, .admin, timeout: .seconds(5))
            do {
                let status = try await client.etcdStatus()
                if !status.errors.isEmpty { return .failure(Reason(description: "\(cp)'s etcd reports: \(status.errors.joined(separator: "; "))")) }
                if members.isEmpty { members = try await client.etcdMembers() }
            } catch let error as TalosError where error.isTransient {
                return .failure(Reason(description: "\(cp): \(error)"))
            }
        }
        let names = Set(members.filter { !$0.hostname.isEmpty && !$0.isLearner }.map(\.hostname))
        let missing = wanted.filter { !names.contains($0) }
        guard missing.isEmpty else {
            return .failure(Reason(description: "\(names.count) of \(wanted.count) control planes are etcd members; waiting for \(missing.joined(separator: ", "))"))
        }
        return .success(["members": "\(members.count)"])
    }
}
