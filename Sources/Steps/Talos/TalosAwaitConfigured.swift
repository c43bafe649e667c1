import Foundation
import ProvisionCore
import TalosKit

/// `talos.await-configured`: the node answers over mTLS with our cluster's certificate, its
/// machine stage is running and its core services are up. Reports the boot ID it saw, so later
/// steps can prove a reboot.
///
/// With `before: bootstrap` (the wait in front of `talos.bootstrap`), a control plane also counts
/// as configured while it is `booting` with its core services up and etcd waiting: that is where
/// Talos stays until someone bootstraps etcd. Its boot sequence's last task starts every service and
/// waits for all of them, and etcd's pre-start waits for a bootstrap or a join (talos v1.13.9
/// `v1alpha1_sequencer_tasks.go` StartAllServices, `system/services/etcd.go` buildInitialCluster),
/// so the stage turns `running` only after the bootstrap. Talos' own bootstrapper accepts
/// `booting` or `running` (`pkg/cluster/bootstrap.go`). Waits after a reboot or a reset of a member
/// of a running cluster keep the default: `running`.
public struct TalosAwaitConfigured: StepKind {
    public let info = StepKindInfo(name: "talos.await-configured", summary: "wait for install, reboot and a running node",
                                   estimate: .seconds(180), scope: .node, mutates: false, defaultTimeout: .seconds(1200),
                                   parameters: ["before"])

    /// Up on a configured node, booting or running: Talos' kubelet service controller starts the
    /// kubelet once its spec and certificates exist, etcd or not (`k8s/kubelet_service.go`).
    static let requiredServices = ["apid", "containerd", "cri", "kubelet", "machined"]

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if let outputs = try await check(node, context, beforeBootstrap: try beforeBootstrap(step, context)) { return .satisfied(outputs) }
        return .pending("\(node) is not running configured yet")
    }

    /// Whether a control plane waiting for the bootstrap counts (`before: bootstrap`, control planes only).
    func beforeBootstrap(_ step: StepInstance, _ context: StepContext) throws -> Bool {
        guard let before = step.parameters.string("before") else { return false }
        guard before == "bootstrap" else {
            throw StepError.permanent("talos.await-configured takes `before: bootstrap` or nothing, not `before: \(before)`")
        }
        let node = try step.requireNode()
        return context.inventory.controlPlanes.contains { $0.name.value == node }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let beforeBootstrap = try beforeBootstrap(step, context)
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
            return try await check(node, context, status: status, beforeBootstrap: beforeBootstrap)
        }
    }

    /// Outputs when the node is running with its services up (or, `beforeBootstrap`, booting with
    /// etcd waiting for the bootstrap); nil while it is on its way. A look that has just read the
    /// machine's status passes it, saving a round trip.
    func check(_ node: String, _ context: StepContext, status known: MachineStatus? = nil, beforeBootstrap: Bool = false) async throws -> StepOutputs? {
        let access = TalosAccess.from(context)
        let client = try await access.client(node, .admin, timeout: .seconds(5))
        let status: MachineStatus
        if let known { status = known } else {
            do { status = try await client.machineStatus() } catch let error as TalosError where error.isTransient { return nil }
        }
        guard status.stage == .running || (status.stage == .booting && beforeBootstrap) else { return nil }
        let services = try await client.services()
        let running = Set(services.filter { $0.state == "Running" }.map(\.id))
        guard Self.requiredServices.allSatisfy(running.contains) else { return nil }
        guard status.stage == .booting else { return ["bootID": try await client.bootID(), "stage": status.stage.rawValue] }
        guard let etcd = services.first(where: { $0.id == "etcd" }), Self.etcdWaitsOrRuns(etcd) else { return nil }
        return ["bootID": try await client.bootID(), "stage": status.stage.rawValue, "etcd": etcd.state]
    }

    /// etcd as Talos' service runner reports it before the bootstrap: `Preparing` while its
    /// pre-start waits for a bootstrap or a join (health not yet known), or `Running` and healthy
    /// once it has joined; anything else (Failed, Finished, Waiting on its conditions) is not ready.
    static func etcdWaitsOrRuns(_ etcd: Machine_ServiceInfo) -> Bool {
        switch etcd.state {
        case "Preparing": return !etcd.health.healthy
        case "Running": return etcd.health.healthy
        default: return false
        }
    }
}
