import Foundation
import ProvisionCore
import TalosKit

/// `talos.await-configured`: the node answers over mTLS with our cluster's certificate, its
/// machine stage is running and its core services are up. Reports the boot ID it saw, so later
/// steps can prove a reboot.
public struct TalosAwaitConfigured: StepKind {
    public let info = StepKindInfo(name: "talos.await-configured", summary: "wait for install, reboot and a running node",
                                   estimate: .seconds(180), scope: .node, mutates: false, defaultTimeout: .seconds(1200))

    static let requiredServices = ["apid", "containerd", "cri", "kubelet", "machined"]

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if let outputs = try await check(node, context) { return .satisfied(outputs) }
        return .pending("\(node) is not running configured yet")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        var lastStage: MachineStatus.Stage?
        let wake = StageWake(access: access, node: node)
        return try await waitFor("\(node) to run configured", interval: access.eventPollInterval, step: step, context: context, wake: wake.wait) {
            let client = try await access.client(node, .admin, timeout: .seconds(5))
            let status: MachineStatus
            do { status = try await client.machineStatus() } catch let error as TalosError where error.isTransient {
                wake.saw(nil)
                return nil
            }
            wake.saw(status.stage)
            if status.stage != lastStage {
                lastStage = status.stage
                context.log("\(node): \(status.stage.rawValue)", step: step)
            }
            return try await check(node, context, status: status)
        }
    }

    /// Outputs when the node is running with its services up; nil while it is on its way. A look
    /// that has just read the machine's status passes it, saving a round trip.
    func check(_ node: String, _ context: StepContext, status known: MachineStatus? = nil) async throws -> StepOutputs? {
        let access = TalosAccess.from(context)
        let client = try await access.client(node, .admin, timeout: .seconds(5))
        let status: MachineStatus
        if let known { status = known } else {
            do { status = try await client.machineStatus() } catch let error as TalosError where error.isTransient { return nil }
        }
        guard status.stage == .running else { return nil }
        let running = Set(try await client.services().filter { $0.state == "Running" }.map(\.id))
        guard Self.requiredServices.allSatisfy(running.contains) else { return nil }
        return ["bootID": try await client.bootID(), "stage": status.stage.rawValue]
    }
}
