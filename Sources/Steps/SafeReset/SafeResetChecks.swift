import Foundation
import ProvisionCore
import TalosKit

/// Whether a safe reset of the node is already under way (its reset is recorded): the checks that
/// guard the reset then stand aside, so a resumed run goes on instead of refusing a node that is,
/// by design, in maintenance and out of etcd.
func resetUnderWay(_ node: String, _ context: StepContext) -> Bool {
    TalosReset.underWay(node, context) != nil
}

/// `talos.identity-check`: the machine answering at the node's address is the node the inventory
/// names: it holds a certificate from this cluster's CA (mTLS succeeds) and calls itself by the
/// inventory's hostname. A wrong address must never be reset.
public struct TalosIdentityCheck: StepKind {
    public let info = StepKindInfo(name: "talos.identity-check", summary: "refuse unless the node answering is the node the inventory names",
                                   estimate: .seconds(2), scope: .node, mutates: false, defaultTimeout: .seconds(60))

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if resetUnderWay(node, context) { return .satisfied(["identity": "reset under way"]) }
        let access = TalosAccess.from(context)
        let address = try access.address(of: node)
        let probe = try await access.probe(node)
        switch probe.mode {
        case .configured: break
        case .unreachable, .tlsError: throw TalosError.unreachable(host: node, reason: probe.reason ?? "no reply")
        default: throw StepError.refused("\(node) at \(address) is \(probe.mode.rawValue), not a configured member of this cluster; refusing to reset it")
        }
        let expected = context.inventory.node(named: node)?.hostname ?? node
        let hostname = try await access.client(node, .admin).hostname()
        guard hostname == expected else {
            throw StepError.refused("the machine at \(address) calls itself \(hostname), not \(expected): the inventory's address is wrong; nothing was reset")
        }
        let bootID = try await access.client(node, .admin).bootID()
        return .satisfied(["hostname": hostname, "bootID": bootID])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard case let .satisfied(outputs) = try await observe(step, context: context) else { throw StepError.transient("identity not established") }
        return outputs
    }
}

/// `talos.quorum-check`: resetting the node leaves a healthy etcd with quorum (the etcd gate, for a
/// member that leaves and comes back): every member running and healthy, no alarm, and enough of
/// the others remain. Refused otherwise, unless `--force`.
public struct TalosQuorumCheck: StepKind {
    public let info = StepKindInfo(name: "talos.quorum-check", summary: "refuse if removing the node would break etcd quorum or the cluster is unhealthy",
                                   estimate: .seconds(3), scope: .node, mutates: false, defaultTimeout: .seconds(60), parameters: ["force"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if resetUnderWay(node, context) { return .satisfied(["quorum": "reset under way"]) }
        guard context.inventory.node(named: node)?.role.value == .controlplane else { return .satisfied(["quorum": "not an etcd member"]) }
        let problems = try await problems(node, context)
        guard problems.isEmpty else {
            if context.arguments["force"] == "true" {
                context.log("--force: going on despite: \(problems.joined(separator: "; "))", level: .warning, step: step)
                return .satisfied(["quorum": "forced"])
            }
            throw StepError.refused("resetting \(node) now is unsafe: \(problems.joined(separator: "; ")); nothing was changed (--force overrides)")
        }
        return .satisfied(["quorum": "ok"])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        guard case let .satisfied(outputs) = try await observe(step, context: context) else { throw StepError.transient("quorum not established") }
        return outputs
    }

    func problems(_ node: String, _ context: StepContext) async throws -> [String] {
        await EtcdGate(context: context, purpose: .leave).problems(before: node)
    }
}
