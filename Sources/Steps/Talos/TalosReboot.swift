import Foundation
import ProvisionCore
import TalosKit

/// `talos.reboot`: a node whose disk holds a config that is not active yet (STAGED by
/// `talos.apply-config`) is rebooted through the gated sequence (`GatedDisruption`: etcd gate on a
/// control plane, drain, reboot, wait for the new boot with the desired config active, etcd healthy
/// again, uncordon). Control planes take the `disruption` resource (one at a time), workers
/// `disruption-workers` (`--max-parallel`). A reboot under way is resumed, never sent twice.
public struct TalosReboot: StepKind {
    public let info = StepKindInfo(name: "talos.reboot", summary: "reboot a node whose staged config waits, gated: etcd healthy, drained, one control plane at a time",
                                   estimate: .seconds(60), scope: .node, defaultTimeout: .seconds(1800))

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        Self.disruptionSlot(step.node, context)
    }

    /// The slot a node's disruption holds: one for all control planes, `--max-parallel` for workers.
    static func disruptionSlot(_ node: String?, _ context: StepContext) -> [ResourceKey] {
        guard let node else { return [] }
        return context.inventory.node(named: node)?.role.value == .controlplane
            ? [ResourceKey("disruption", "control-planes")] : [ResourceKey("disruption-workers", "workers")]
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if let record = GatedDisruption.underWay(node, context), record.action == "reboot" {
            return .pending("\(node): its reboot (\(record.detail)) is under way since run \(record.runID)")
        }
        let probe = try await TalosAccess.from(context).probe(node)
        probe.connection?.close()
        switch probe.mode {
        case .configured: break
        case .unreachable, .tlsError: throw TalosError.unreachable(host: node, reason: probe.reason ?? "no reply")
        default: return .satisfied(["reboot": "not configured"])
        }
        let drift = try await NodeConfigDrift.read(node, context: context)
        guard drift.rebootOwed else { return .satisfied(["reboot": "none owed"]) }
        context.plan(PlannedChange(node: node, resource: "config", action: "reboot", reason: "a staged config waits for its reboot", reboot: true), step: step)
        return .pending("\(node): a staged config waits for its reboot")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let disruption = GatedDisruption(step: step, context: context, node: node, action: "reboot", detail: "staged config")
        return try await disruption.run(send: { client in
            "reboot sent (actor \(try await client.reboot()))"
        }, cameBack: { _ in
            let drift = try await NodeConfigDrift.read(node, context: context)
            return drift.rebootOwed ? "its disk still holds a config that is not active" : nil
        })
    }
}
