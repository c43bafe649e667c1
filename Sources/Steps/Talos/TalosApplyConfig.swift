import Foundation
import ProvisionCore
import TalosKit

/// `talos.apply-config`: sends the node's rendered config over the maintenance API (mode AUTO,
/// always explicit), on the connection whose handshake just identified the node as Talos in
/// maintenance; a node that rebooted since (a new maintenance key) is identified again first. A
/// node already configured by this cluster is left alone; the config is validated against
/// Talos' schema before it leaves this machine.
public struct TalosApplyConfig: StepKind {
    public let info = StepKindInfo(name: "talos.apply-config", summary: "push the node's rendered machine config",
                                   estimate: .seconds(5), scope: .node, defaultTimeout: .seconds(120), parameters: ["mode"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        let result = try await TalosAccess.from(context).probe(node)
        return try Self.observation(node, result)
    }

    static func observation(_ node: String, _ result: TalosProbe.Result) throws -> Observation {
        switch result.mode {
        case .configured: return .satisfied(["mode": "configured"])
        case .maintenance: return .pending("\(node) is in maintenance mode, waiting for its config")
        case .wrongCluster, .configuredUnverified:
            throw StepError.refused("\(node) is not this cluster's node: \(result.reason ?? "its certificate is not from our OS CA"); not applying")
        case .unreachable, .tlsError: throw TalosError.unreachable(host: node, reason: result.reason ?? "no reply")
        case .notAllowed: throw StepError.refused(result.reason ?? "\(node): address not allowed")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let config = try await access.config(for: node)
        let identified = try await access.probe(node)
        if case let .satisfied(outputs) = try Self.observation(node, identified) { return outputs }
        guard let connection = identified.connection else { throw TalosError.unreachable(host: node, reason: "no connection") }
        defer { connection.close() }
        var client = TalosClient(connection: connection)
        client.timeout = .seconds(10)
        let reply = try await client.applyConfiguration(config, mode: .auto)
        context.log("\(node) accepted its config (\(reply.mode))", step: step)
        return ["mode": "\(reply.mode)"]
    }
}
