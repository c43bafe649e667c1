import Foundation
import ProvisionCore
import TalosKit

/// `talos.reset`: a graceful reset of STATE and EPHEMERAL with reboot (a control plane leaves etcd
/// first), verified by the node coming back in maintenance or with a new boot ID.
///
/// Never twice: it is a `GatedDisruption` (action `reset`), so the boot ID is recorded in the
/// journal before the call, and while that record exists the step only verifies. The checks that
/// guard it are earlier steps (identity, quorum, drain); the steps that bring the node back (or
/// retire it) end the record.
public struct TalosReset: StepKind {
    public let info = StepKindInfo(name: "talos.reset", summary: "graceful reset of STATE and EPHEMERAL with reboot, verified",
                                   estimate: .seconds(120), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        TalosReboot.disruptionSlot(step.node, context)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        guard let record = Self.underWay(node, context) else { return .pending("\(node) will be reset") }
        if let outputs = try await Self.verified(node, bootBefore: record.bootBefore, context) { return .satisfied(outputs) }
        return .pending("\(node) was reset (boot \(record.bootBefore.prefix(8))) and has not come back yet")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        var disruption = GatedDisruption(step: step, context: context, node: node, action: "reset", detail: "STATE and EPHEMERAL, graceful")
        disruption.sequence = .init(gate: nil, drain: false, finish: false)
        return try await disruption.run(send: { client in
            "reset started (actor \(try await client.resetSystemPartitions()))"
        }, back: { bootBefore in
            try await Self.verified(node, bootBefore: bootBefore, context)
        })
    }

    /// The reset of `node` under way (recorded, not yet ended by the steps that follow it).
    static func underWay(_ node: String, _ context: StepContext) -> Journal.Disruption? {
        GatedDisruption.underWay(node, context).flatMap { $0.action == "reset" ? $0 : nil }
    }

    /// The node is back: in maintenance (metal/ISO), or configured again with a new boot ID (cloud
    /// images re-apply their user-data).
    static func verified(_ node: String, bootBefore: String, _ context: StepContext) async throws -> StepOutputs? {
        let access = TalosAccess.from(context)
        let probe = try await access.probe(node)
        probe.connection?.close()
        switch probe.mode {
        case .maintenance: return ["after": "maintenance"]
        case .unreachable, .tlsError:
            guard let address = await NodeLocator.inMaintenance(node, context) else { return nil }
            return ["after": "maintenance", "address": address]
        case .configured:
            let now = try? await access.client(node, .admin, timeout: .seconds(5)).bootID()
            if let now, now != bootBefore { return ["after": "configured", "bootAfter": now] }
            return nil
        default: return nil
        }
    }

    /// The reset is over: the node was brought back (or retired). Called by the steps that follow it.
    public static func clear(_ context: StepContext, node: String) {
        try? context.journal?.endDisruption(node: node)
    }
}
