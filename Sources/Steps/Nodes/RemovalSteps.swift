import Foundation
import ProvisionCore
import TalosKit

/// How a node to be removed answers: configured by us (alive), in maintenance (already reset), or
/// not at all (dead, or its machine is gone). Anything else is not ours and is refused.
enum NodeLiveness: String {
    case configured, maintenance, dead

    static func of(_ node: String, _ context: StepContext) async throws -> NodeLiveness {
        let access = TalosAccess.from(context)
        guard context.inventory.node(named: node)?.address.value != IPv4Address(raw: 0) else { return .dead }
        let probe = try await access.probe(node)
        probe.connection?.close()
        switch probe.mode {
        case .configured: return .configured
        case .maintenance: return .maintenance
        case .unreachable, .tlsError:
            return await NodeLocator.inMaintenance(node, context) == nil ? .dead : .maintenance
        case .wrongCluster, .configuredUnverified, .notAllowed:
            throw StepError.refused("\(node) at \(try access.address(of: node)) is not this cluster's node (\(probe.reason ?? probe.mode.rawValue)); nothing was touched")
        }
    }

    /// The node's etcd member, as a control plane that answers (another than the node) lists it.
    static func member(_ node: String, _ context: StepContext) async -> (member: Machine_EtcdMember?, via: String?) {
        let hostname = context.inventory.node(named: node)?.hostname ?? node
        let access = TalosAccess.from(context)
        for cp in context.inventory.controlPlanes.map(\.name.value) where cp != node {
            guard let members = try? await access.client(cp, .admin, timeout: .seconds(3)).etcdMembers() else { continue }
            return (members.first { $0.hostname == hostname }, cp)
        }
        return (nil, nil)
    }
}

/// `talos.removal-check`: the node may be retired: the machine answering is ours and the one the
/// inventory (or etcd, for an orphan) names, or it is dead; and, when it is an etcd member, etcd
/// keeps quorum without it and is not left with 2 members. Refused otherwise (exit 3, nothing
/// touched) unless `--force`. Once the removal is under way it stands aside, so a resumed run goes on.
public struct TalosRemovalCheck: StepKind {
    public let info = StepKindInfo(name: "talos.removal-check", summary: "refuse to remove a node that is not ours, or whose removal would break etcd",
                                   estimate: .seconds(3), scope: .node, mutates: false, defaultTimeout: .seconds(120), parameters: ["force"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if TalosReset.underWay(node, context) != nil { return .satisfied(["check": "removal under way"]) }
        let liveness = try await NodeLiveness.of(node, context)
        if liveness == .configured {
            let expected = context.inventory.node(named: node)?.hostname ?? node
            let hostname = try await TalosAccess.from(context).client(node, .admin).hostname()
            guard hostname == expected else {
                throw StepError.refused("the machine at \(try TalosAccess.from(context).address(of: node)) calls itself \(hostname), not \(expected): the address is wrong; nothing was touched")
            }
        }
        let problems = await EtcdGate(context: context, purpose: .remove).problems(before: node)
        if !problems.isEmpty {
            guard context.arguments["force"] == "true" else {
                throw StepError.refused("removing \(node) now is unsafe: \(problems.joined(separator: "; ")); nothing was touched (--force overrides)")
            }
            context.log("--force: going on despite: \(problems.joined(separator: "; "))", level: .warning, step: step)
        }
        return .satisfied(["node": liveness.rawValue])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard case let .satisfied(outputs) = try await observe(step, context: context) else { return [:] }
        return outputs
    }
}

/// `talos.leave`: the node leaves the cluster. Alive, it gets a graceful reset of STATE and
/// EPHEMERAL (Talos leaves etcd first, then wipes and reboots into maintenance) through the gated
/// disruption record, so it is never reset twice; dead, its etcd member is removed by ID through a
/// healthy control plane. Done when etcd no longer lists it and it is not configured.
public struct TalosLeave: StepKind {
    public let info = StepKindInfo(name: "talos.leave", summary: "take the node out of etcd: graceful reset when it answers, remove its member by ID when it is dead",
                                   estimate: .seconds(60), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        TalosReboot.disruptionSlot(step.node, context)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        let liveness = try await NodeLiveness.of(node, context)
        let (member, _) = await NodeLiveness.member(node, context)
        if member == nil, liveness != .configured {
            TalosReset.clear(context, node: node)
            return .satisfied(["node": liveness.rawValue, "etcd": "not a member"])
        }
        return .pending("\(node) is \(liveness == .configured ? "still configured" : liveness.rawValue)\(member != nil ? " and still an etcd member" : "")")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        var outputs: StepOutputs = [:]
        if try await NodeLiveness.of(node, context) == .configured || TalosReset.underWay(node, context) != nil {
            outputs = try await TalosReset().apply(step, context: context)
        }
        let (member, via) = await NodeLiveness.member(node, context)
        if let member, let via {
            // Dead, or its own leave did not finish: a healthy control plane removes the member by ID.
            try await TalosAccess.from(context).client(via, .admin).etcdRemoveMember(id: member.id)
            context.log("\(node): etcd member \(String(member.id, radix: 16)) removed through \(via)", step: step)
            outputs["removedMember"] = String(member.id, radix: 16)
        }
        TalosReset.clear(context, node: node)
        return outputs
    }
}
