import Foundation
import ProvisionCore
import TalosKit

/// `talos.apply-config`: sends the node's rendered config over the maintenance API (mode AUTO,
/// always explicit). A node already configured by this cluster is left alone; the config is
/// validated against Talos' schema before it leaves this machine.
public struct TalosApplyConfig: StepKind {
    public let info = StepKindInfo(name: "talos.apply-config", summary: "push the node's rendered machine config",
                                   estimate: .seconds(5), scope: .node, defaultTimeout: .seconds(120), parameters: ["mode"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        let result = try await TalosAccess.from(context).probe(node)
        switch result.mode {
        case .configured: return .satisfied(["mode": "configured"])
        case .maintenance: return .pending("\(node) is in maintenance mode, waiting for its config")
        case .wrongCluster, .configuredUnverified: throw StepError.refused("\(node) is configured by another cluster; not applying")
        case .unreachable, .tlsError: throw TalosError.unreachable(host: node, reason: result.reason ?? "no reply")
        case .notAllowed: throw StepError.refused(result.reason ?? "\(node): address not allowed")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let config = try await access.config(for: node)
        let client = try await access.client(node, .maintenance)
        let reply = try await client.applyConfiguration(config, mode: .auto)
        context.log("\(node) accepted its config (\(reply.mode))", step: step)
        return ["mode": "\(reply.mode)"]
    }
}
