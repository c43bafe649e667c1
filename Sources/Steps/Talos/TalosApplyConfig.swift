import Foundation
import ProvisionCore
import TalosKit

/// `talos.apply-config`: gives every node the config the inventory renders now.
///
/// In maintenance the config goes over the connection whose handshake just identified the node as
/// Talos in maintenance (mode AUTO, always explicit); a node that rebooted since (a new maintenance
/// key) is identified again first. On a configured node the rendered config is compared with the
/// active one (COSI `MachineConfigs`); when they differ Talos is asked, by a dry-run apply, whether
/// the change applies live: if so it is sent NO_REBOOT, else STAGED, and `talos.reboot` then reboots
/// the node through the etcd-gated, drained sequence. REBOOT and AUTO are never sent to a running
/// node: Talos would reboot it with no drain and no etcd check. A live change to a control plane
/// goes one control plane at a time and waits until the static pods it re-rendered run it. The config is validated against
/// Talos' schema before it leaves this machine.
public struct TalosApplyConfig: StepKind {
    // The timeout covers waiting for the control-plane slot behind the others' rollouts, and the
    // rollout of this node's static pods.
    public let info = StepKindInfo(name: "talos.apply-config", summary: "give the node its rendered machine config (live, or staged for a gated reboot)",
                                   estimate: .seconds(5), scope: .node, defaultTimeout: .seconds(1800), parameters: ["mode"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        let result = try await TalosAccess.from(context).probe(node)
        result.connection?.close()
        if case .satisfied = try Self.observation(node, result) {
            Self.versionDrift(step, node, running: result.version, context)
            return try await configured(step, node, context)
        }
        return .pending("\(node) is in maintenance mode, waiting for its config")
    }

    static func observation(_ node: String, _ result: TalosProbe.Result) throws -> Observation {
        switch result.mode {
        case .configured: return .satisfied(["mode": "configured"])
        case .maintenance: return .pending("\(node) is in maintenance mode, waiting for its config")
        case .wrongCluster, .configuredUnverified:
            throw StepError.refused("\(node) is not this cluster's node: \(result.reason ?? "its certificate is not from our OS CA"); not applying")
        // Not at its address: in maintenance it may be at its DHCP lease (apply finds it there by its MAC).
        case .unreachable, .tlsError: return .pending("\(node) is not at its address (\(result.reason ?? "no reply")); looked for in maintenance where DHCP put it")
        case .notAllowed: throw StepError.refused(result.reason ?? "\(node): address not allowed")
        }
    }

    /// A configured node: in sync, staged for its reboot, or drifted (then Talos says what it costs).
    func configured(_ step: StepInstance, _ node: String, _ context: StepContext) async throws -> Observation {
        let drift = try await NodeConfigDrift.read(node, context: context)
        if drift.inSync { return .satisfied(["mode": "configured", "config": "in sync"]) }
        if drift.stagedForReboot { return .satisfied(["mode": "configured", "config": "staged, waits for its reboot"]) }
        let reboot = try await Self.needsReboot(node, drift, context)
        let lines = drift.diff.map { $0.split(separator: "\n").filter { $0.hasPrefix("+") || $0.hasPrefix("-") }.count - 2 } ?? 0
        let reason = "config differs from the active one (\(max(lines, 1)) lines); " + (reboot ? "needs a reboot (Talos says so): staged, then a gated reboot" : "Talos applies it live")
        context.plan(PlannedChange(node: node, resource: "config", action: reboot ? "reboot" : "update", reason: reason, reboot: reboot, diff: drift.diff), step: step)
        return .pending("\(node): \(reason)")
    }

    /// A node on another Talos version than the inventory's is an upgrade's business, never `up`'s:
    /// the plan says so and names the command.
    static func versionDrift(_ step: StepInstance, _ node: String, running: String?, _ context: StepContext) {
        kubernetesDrift(step, node, context)
        guard let running, let spec = context.inventory.node(named: node) else { return }
        let wanted = spec.talosVersion?.value ?? context.inventory.cluster.talosVersion.value
        guard running != wanted else { return }
        let reason = "runs Talos \(running), the inventory says \(wanted); `up` never upgrades: `provision upgrade \(context.inventory.name)` does, node by node"
        context.plan(PlannedChange(node: node, resource: "talos-version", action: "upgrade", reason: reason), step: step)
        if !context.dryRun { context.log("\(node) \(reason)", level: .warning, step: step) }
    }

    /// A raised `kubernetesVersion` is rendered only once `provision upgrade` moves the cluster (the
    /// configs stay at the recorded version); said once, at the first control plane.
    static func kubernetesDrift(_ step: StepInstance, _ node: String, _ context: StepContext) {
        guard node == context.inventory.controlPlanes.first?.name.value,
              let recorded = KubernetesVersions.load(stateDirectory: context.stateDirectory) else { return }
        let wanted = context.inventory.cluster.kubernetesVersion.value
        guard recorded.version != wanted || recorded.target != nil else { return }
        let reason = recorded.target != nil
            ? "a Kubernetes upgrade to \(recorded.target ?? "") is under way; `provision upgrade \(context.inventory.name)` finishes it"
            : "the cluster runs Kubernetes \(recorded.version), the inventory says \(wanted); `up` never upgrades: `provision upgrade \(context.inventory.name) --kubernetes-only` does, component by component"
        context.plan(PlannedChange(node: nil, resource: "kubernetes", action: "upgrade", reason: reason), step: step)
        if !context.dryRun { context.log(reason, level: .warning, step: step) }
    }

    /// What would be sent to a configured node, and whether Talos takes it live; nil when its
    /// active config is the desired one, or the desired one is staged for its reboot.
    static func pendingChange(_ node: String, _ context: StepContext) async throws -> (drift: NodeConfigDrift, live: Bool)? {
        let drift = try await NodeConfigDrift.read(node, context: context)
        if drift.inSync || drift.stagedForReboot { return nil }
        return (drift, !(try await needsReboot(node, drift, context)))
    }

    /// Talos' own answer, from a dry-run apply: whether the change needs a reboot.
    static func needsReboot(_ node: String, _ drift: NodeConfigDrift, _ context: StepContext) async throws -> Bool {
        let client = try await TalosAccess.from(context).client(node, .admin)
        let reply: Machine_ApplyConfiguration
        do { reply = try await client.applyConfiguration(drift.desiredText, mode: .auto, dryRun: true) } catch let TalosError.rejected(message) {
            throw StepError.permanent("\(node) refuses the rendered config: \(message)")
        }
        return reply.mode != .noReboot
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let config = try await access.config(for: node)
        guard let spec = context.inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        // In maintenance the node may be at its DHCP lease: sent only to the machine whose links
        // carry its MAC, on the connection that proved it.
        let result: TalosProbe.Result, address: String
        switch try await NodeLocator(spec, access: access, context: context).locate() {
        case let .configured(identified):
            identified.connection?.close()
            return try await reconfigure(step, node, context)
        case let .maintenance(identified, at):
            (result, address) = (identified, at)
        case let .missing(reason):
            throw TalosError.unreachable(host: node, reason: reason)
        }
        guard let connection = result.connection else { throw TalosError.unreachable(host: node, reason: "no connection") }
        defer { connection.close() }
        var client = TalosClient(connection: connection)
        client.timeout = .seconds(10)
        let reply = try await client.applyConfiguration(config, mode: .auto)
        context.log("\(node) accepted its config (\(reply.mode))" + (address == spec.address.value.description ? "" : " at \(address); it moves to \(spec.address.value)"), step: step)
        return ["mode": "\(reply.mode)"]
    }

    /// A running node: NO_REBOOT when Talos takes the change live, STAGED otherwise (the reboot is
    /// `talos.reboot`'s, gated). Never REBOOT or AUTO.
    func reconfigure(_ step: StepInstance, _ node: String, _ context: StepContext) async throws -> StepOutputs {
        guard let (drift, live) = try await Self.pendingChange(node, context) else { return ["mode": "configured"] }
        // Talos re-renders a control plane's static pods on any change to what feeds them: applied to
        // every control plane at once, kube-apiserver would restart everywhere together. One control
        // plane at a time (the gated reboots' slot), each waited for until its pods run the change.
        if live, context.inventory.node(named: node)?.role.value == .controlplane {
            return try await context.holding(TalosReboot.disruptionSlot(node, context)) {
                guard let (drift, live) = try await Self.pendingChange(node, context) else { return ["mode": "configured"] }
                let client = try await TalosAccess.from(context).client(node, .admin)
                let before = try? await client.staticPodVersions()
                if before == nil {
                    context.log("\(node): its static pods' versions could not be read; the change goes without waiting for them", level: .warning, step: step)
                }
                let outputs = try await send(step, node, drift, live: live, context)
                if live, let before { try await StaticPodRollout(node: node, step: step, context: context).wait(since: before) }
                return outputs
            }
        }
        return try await send(step, node, drift, live: live, context)
    }

    /// NO_REBOOT when live, else STAGED; a change that stopped being live is staged.
    func send(_ step: StepInstance, _ node: String, _ drift: NodeConfigDrift, live: Bool, _ context: StepContext) async throws -> StepOutputs {
        let client = try await TalosAccess.from(context).client(node, .admin)
        var mode: Machine_ApplyConfigurationRequest.Mode = live ? .noReboot : .staged
        if let diff = drift.diff { context.log("\(node): config change\n\(diff)", level: .debug, step: step) }
        do {
            _ = try await client.applyConfiguration(drift.desiredText, mode: mode)
        } catch TalosError.rejected where mode == .noReboot {
            // It stopped being live between the dry run and now: stage it instead.
            mode = .staged
            _ = try await client.applyConfiguration(drift.desiredText, mode: mode)
        }
        context.log(mode == .noReboot ? "\(node): config applied live, no reboot" : "\(node): config staged; it takes effect at the gated reboot", step: step)
        return ["mode": mode == .noReboot ? "NO_REBOOT" : "STAGED"]
    }
}
