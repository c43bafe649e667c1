import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// The one way a running node is taken down and brought back: a staged config's reboot, a safe
/// reset's and a removal's reset, an upgrade's reboot. The engine's resources keep control planes
/// strictly one at a time and workers to `--max-parallel`; this does the rest, in order:
///
/// 1. on a control plane, the etcd gate (every member started and healthy, no alarm, not 2 members);
/// 2. cordon and drain (PodDisruptionBudgets respected) when the cluster has a Kubernetes API;
/// 3. the boot ID is read and the disruption recorded in the journal, then the action is sent;
/// 4. wait for a new boot ID, the machine running and ready, and the caller's own check (the
///    active config is the desired one); on a control plane the gate again, now for every member;
/// 5. the Node Ready again, uncordoned; the record is cleared.
///
/// A `kill -9` anywhere resumes from the record: a disruption already sent is only waited for,
/// never sent twice; one recorded but maybe not received is waited for first, then sent.
struct GatedDisruption {
    /// Which parts of the sequence this disruption has.
    struct Sequence: Sendable {
        /// The etcd gate before (a control plane), or nil when an earlier step checked already.
        var gate: EtcdGate.Purpose? = .disrupt
        var drain = true
        /// Gate again, Ready, uncordon and clear the record; false when later steps finish the job
        /// (a safe reset's rejoin, a removal) and clear it themselves.
        var finish = true
    }

    let step: StepInstance
    let context: StepContext
    let node: String
    /// `reboot`, `upgrade`: what the record and the log call it.
    let action: String
    /// Why and with what (the apply mode, the image): kept in the record.
    let detail: String
    var sequence = Sequence()

    var access: TalosAccess { TalosAccess.from(context) }
    var isControlPlane: Bool { context.inventory.node(named: node)?.role.value == .controlplane }
    var hostname: String { context.inventory.node(named: node)?.hostname ?? node }

    /// The disruption of `node` the journal says is under way, if any.
    static func underWay(_ node: String, _ context: StepContext) -> Journal.Disruption? {
        try? context.journal?.disruption(node: node)
    }

    /// The common case: back means a new boot ID, running and ready, and then `cameBack` says whether
    /// the node that came back is the one wanted (a problem, or nil: config active, version running).
    func run(send: @Sendable (TalosClient) async throws -> String,
             cameBack: @Sendable @escaping (TalosClient) async throws -> String?) async throws -> StepOutputs {
        try await run(send: send) { bootBefore in try await rebooted(since: bootBefore, cameBack: cameBack) }
    }

    /// Runs the sequence. `send` makes the node go down (returns what to log); `back` returns the
    /// outputs once the node is back as wanted, nil while it is not yet.
    func run(send: @Sendable (TalosClient) async throws -> String,
             back: @Sendable @escaping (String) async throws -> StepOutputs?) async throws -> StepOutputs {
        var record = Self.underWay(node, context)
        if let existing = record, existing.action != action {
            throw StepError.refused("\(node) has a \(existing.action) under way since run \(existing.runID); finish it first (`provision up`)")
        }
        if record == nil {
            // One node that came back wrong stops the rollout: nothing else goes down until it is understood.
            if let failed = try context.journal?.disruptions().first(where: { $0.phase == "failed" && $0.node != node }) {
                throw StepError.refused("the rollout is stopped: \(failed.node)'s \(failed.action) (\(failed.detail)) failed in run \(failed.runID); \(node) is left as it is")
            }
            if isControlPlane, let purpose = sequence.gate {
                try await EtcdGate(context: context, purpose: purpose).waitOpen(before: node, timeout: access.scaled(.seconds(300)), step: step, what: "take \(node) down")
            }
            if sequence.drain { try await drain() }
            let bootBefore = try await client().bootID()
            try context.journal?.recordDisruption(node: node, run: context.runID, action: action, bootBefore: bootBefore, detail: detail, phase: "gated")
            record = Self.underWay(node, context)
            context.log("\(node): \(action) (\(detail)); boot \(bootBefore.prefix(8)) recorded", step: step)
            try await sendOnce(send, bootBefore: bootBefore)
        } else if let existing = record, existing.phase == "gated" {
            // Killed between recording and the node's answer: it may have it. Give it time to go down first.
            if try await !wentDown(since: existing.bootBefore, within: access.scaled(.seconds(60), floor: .seconds(5))) {
                context.log("\(node): the \(action) recorded in run \(existing.runID) never reached it; sending it now", level: .warning, step: step)
                try await sendOnce(send, bootBefore: existing.bootBefore)
            }
        } else {
            context.log("\(node): resuming the \(action) sent in run \(record?.runID ?? "?")", step: step)
        }
        let bootBefore = record?.bootBefore ?? ""
        let wake = StageWake(access: access, node: node)
        var outputs = try await waitFor("\(node) to come back from its \(action)", interval: access.eventPollInterval, step: step, context: context, wake: wake.wait) {
            wake.saw(try? await client(timeout: .seconds(3)).machineStatus().stage)
            return try await back(bootBefore)
        }
        outputs["bootBefore"] = bootBefore
        outputs[action] = detail
        try context.journal?.recordDisruption(node: node, run: context.runID, action: action, bootBefore: bootBefore, detail: detail, phase: "back")
        context.log("\(node): back\(outputs["bootAfter"].map { " (boot \($0.prefix(8)))" } ?? "")", step: step)
        guard sequence.finish else { return outputs }
        if isControlPlane {
            try await EtcdGate(context: context).waitOpen(before: nil, timeout: access.scaled(.seconds(600)), step: step, what: "\(node)'s \(action)", after: true)
        }
        try await uncordon()
        try context.journal?.endDisruption(node: node)
        return outputs
    }

    func client(timeout: Duration = .seconds(10)) async throws -> TalosClient { try await access.client(node, .admin, timeout: timeout) }

    private func sendOnce(_ send: @Sendable (TalosClient) async throws -> String, bootBefore: String) async throws {
        let note = try await send(try await client(timeout: .seconds(60)))
        try context.journal?.recordDisruption(node: node, run: context.runID, action: action, bootBefore: bootBefore, detail: detail, phase: "sent")
        context.log("\(node): \(note)", step: step)
    }

    /// Whether the node left the boot `bootBefore` (or is down) within `window`.
    private func wentDown(since bootBefore: String, within window: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            do {
                if try await client(timeout: .seconds(3)).bootID() != bootBefore { return true }
            } catch let error as any ClassifiedError where error.isTransient {
                return true
            }
            try await Task.sleep(for: access.pollInterval)
        }
        return false
    }

    /// A new boot ID, running and ready, and the caller's check passed: the usual "back".
    func rebooted(since bootBefore: String, cameBack: @Sendable (TalosClient) async throws -> String?) async throws -> StepOutputs? {
        let client = try await client(timeout: .seconds(5))
        let bootID = try await client.bootID()
        guard bootID != bootBefore else { return nil }
        let status = try await client.machineStatus()
        guard status.stage == .running, status.ready else { return nil }
        if let problem = try await cameBack(client) {
            throw StepError.permanent("\(node) came back from its \(action) (boot \(bootID.prefix(8))) but \(problem); not going on")
        }
        return ["bootAfter": bootID]
    }

    private func kube() -> KubeClient? { try? KubeAccess.from(context).kube() }

    private func drain() async throws {
        guard let kube = kube(), try await kube.get("v1", "Node", name: hostname) != nil else { return }
        let evicted = try await kube.drain(hostname, timeout: access.scaled(.seconds(600)), interval: access.pollInterval)
        context.log("\(node): cordoned and drained (\(evicted.count) pods evicted)", step: step)
    }

    private func uncordon() async throws {
        guard let kube = kube(), try await kube.get("v1", "Node", name: hostname) != nil else { return }
        let name = hostname
        _ = try await waitFor("Node \(name) to be Ready", interval: access.pollInterval, step: step, context: context,
                              wake: kube.wake(.object("v1", "Node", name: name))) {
            try await kube.get("v1", "Node", name: name)?.condition("Ready") == "True" ? true : nil
        }
        try await kube.cordon(name, false)
    }
}
