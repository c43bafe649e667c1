import Foundation
import ProvisionCore
import TalosKit

/// `talos.reset`: a graceful reset of STATE and EPHEMERAL with reboot (a control plane leaves etcd
/// first), verified by the node coming back in maintenance or with a new boot ID.
///
/// Never twice: before the call, the boot ID is recorded in `<state>/resets/<node>`; while that
/// record exists the step only verifies. The follow-up steps of a safe reset remove it.
public struct TalosReset: StepKind {
    public let info = StepKindInfo(name: "talos.reset", summary: "graceful reset of STATE and EPHEMERAL with reboot, verified",
                                   estimate: .seconds(120), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    static func record(_ context: StepContext, _ node: String) -> String { "\(context.stateDirectory)/resets/\(node)" }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        guard let before = try? String(contentsOfFile: Self.record(context, node), encoding: .utf8) else {
            return .pending("\(node) will be reset")
        }
        if let outputs = try await verified(node, bootBefore: before, context) { return .satisfied(outputs) }
        return .pending("\(node) was reset (boot \(before.prefix(8))) and has not come back yet")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let path = Self.record(context, node)
        var before = try? String(contentsOfFile: path, encoding: .utf8)
        if before == nil {
            let client = try await access.client(node, .admin)
            let bootID = try await client.bootID()
            try FileManager.default.createDirectory(atPath: "\(context.stateDirectory)/resets", withIntermediateDirectories: true)
            try PrivateFile.write(Array(bootID.utf8), to: path)
            let actor = try await client.resetSystemPartitions()
            context.log("reset of \(node) started (actor \(actor)); waiting for it to come back", step: step)
            before = bootID
        }
        let bootBefore = before ?? ""
        return try await waitFor("\(node) to come back after reset", interval: access.pollInterval, step: step, context: context) {
            try await verified(node, bootBefore: bootBefore, context)
        }
    }

    /// The node is back: in maintenance (metal/ISO), or configured again with a new boot ID (cloud
    /// images re-apply their user-data).
    func verified(_ node: String, bootBefore: String, _ context: StepContext) async throws -> StepOutputs? {
        let access = TalosAccess.from(context)
        let probe = try await access.probe(node)
        switch probe.mode {
        case .maintenance: return ["after": "maintenance", "bootBefore": bootBefore]
        case .configured:
            let now = try? await access.client(node, .admin, timeout: .seconds(5)).bootID()
            if let now, now != bootBefore { return ["after": "configured", "bootBefore": bootBefore, "bootAfter": now] }
            return nil
        default: return nil
        }
    }

    /// Forgets the record once the node has been brought back (used by the steps that follow).
    public static func clear(_ context: StepContext, node: String) {
        try? FileManager.default.removeItem(atPath: record(context, node))
    }
}
