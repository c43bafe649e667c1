import Foundation
import ProvisionCore
import TalosKit

/// `talos.reset`: a reset of STATE and EPHEMERAL with reboot, verified by the node coming back in
/// maintenance (or, for a node configured from cloud user data, with a new boot ID). Graceful (a
/// control plane leaves etcd first) unless `--force` overrode the etcd gate: etcd would refuse the
/// leave, and Talos' docs say to reset with graceful=false then. A graceful reset etcd refuses
/// fails on the node after it stopped kubelet and every pod, reported only on its Events stream:
/// it is followed there and reported at once, never waited out.
///
/// Never twice: it is a `GatedDisruption` (action `reset`), so the boot ID is recorded in the
/// journal before the call, and while that record exists the step only verifies. The checks that
/// guard it are earlier steps (identity, quorum, drain); the steps that bring the node back (or
/// retire it) end the record.
public struct TalosReset: StepKind {
    public let info = StepKindInfo(name: "talos.reset", summary: "reset of STATE and EPHEMERAL with reboot (graceful unless --force overrode the etcd gate), verified",
                                   estimate: .seconds(120), scope: .node, defaultTimeout: .seconds(900), parameters: ["force"])

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        TalosReboot.disruptionSlot(step.node, context)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        guard let record = Self.underWay(node, context) else { return .pending("\(node) will be reset") }
        do {
            if let outputs = try await Self.verified(node, bootBefore: record.bootBefore, context) { return .satisfied(outputs) }
        } catch let unwiped as NotWiped {
            throw StepError.permanent(Self.failure(node, unwiped.description, graceful: true, context))
        }
        return .pending("\(node) was reset (boot \(record.bootBefore.prefix(8))) and has not come back yet")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let graceful = try await Self.graceful(node, step: step, context)
        var disruption = GatedDisruption(step: step, context: context, node: node, action: "reset",
                                         detail: "STATE and EPHEMERAL, \(graceful ? "graceful" : "not graceful (--force)")")
        disruption.sequence = .init(gate: nil, drain: false, finish: false)
        let watch = SequenceWatch()
        return try await disruption.run(send: { client in
            let actor = try await client.resetSystemPartitions(graceful: graceful)
            watch.follow(client, actor: actor, within: TalosAccess.from(context).scaled(.seconds(900)))
            return "reset started (actor \(actor))"
        }, back: { bootBefore in
            var failed: String?
            if case let .failed(message) = watch.outcome { failed = message }
            if failed == nil {
                do { return try await Self.verified(node, bootBefore: bootBefore, context) } catch let unwiped as NotWiped {
                    // Back unwiped: Talos' own reason is on the stream, which may still be on its way.
                    if case let .failed(message) = await watch.outcome(within: .seconds(5)) { failed = message } else { failed = unwiped.description }
                }
            }
            Self.clear(context, node: node)
            throw StepError.permanent(Self.failure(node, failed ?? "", graceful: graceful, context))
        })
    }

    /// Graceful, unless the etcd gate finds this control plane cannot leave now and `--force` said
    /// go on: then etcd would refuse the leave and the graceful reset would fail on the node.
    static func graceful(_ node: String, step: StepInstance, _ context: StepContext) async throws -> Bool {
        guard context.arguments["force"] == "true", context.inventory.node(named: node)?.role.value == .controlplane else { return true }
        let problems = await EtcdGate(context: context, purpose: .leave).problems(before: node)
        guard !problems.isEmpty else { return true }
        context.log("\(node): etcd cannot be left now (\(problems.joined(separator: "; "))): resetting without leaving it (graceful=false)",
                    level: .warning, step: step)
        return false
    }

    /// What Talos' failed reset means and what to do: the etcd leave is the usual reason for a
    /// graceful control plane's; the node stays cordoned (the run cordoned it), which Talos' own
    /// uncordon-on-boot does not undo.
    static func failure(_ node: String, _ message: String, graceful: Bool, _ context: StepContext) -> String {
        let inventory = context.inventory.name
        let hostname = context.inventory.node(named: node)?.hostname ?? node
        let controlPlane = context.inventory.node(named: node)?.role.value == .controlplane
        var text = "\(node)'s reset failed on the node: \(message). Talos stopped kubelet and its pods, then gave up without wiping anything; "
            + "it reboots with its config about 10 s later and stays cordoned (`kubectl uncordon \(hostname)` once it is back, if it is to serve)"
        if graceful, controlPlane {
            text += ". etcd refused the leave (its last member, or quorum lost): `provision status \(inventory)` shows etcd; if the reset must "
                + "happen anyway, `provision safe-reset \(inventory)/\(node) --force` (or `provision remove ... --force`) resets it without leaving etcd, Talos' advice for this case"
        } else {
            text += "; `provision status \(inventory)` and the node's console (`talosctl dmesg`) say why"
        }
        return text
    }

    /// The node came back configured without having been wiped: its reset sequence failed.
    struct NotWiped: Error, CustomStringConvertible {
        let description: String
    }

    /// The reset of `node` under way (recorded, not yet ended by the steps that follow it).
    static func underWay(_ node: String, _ context: StepContext) -> Journal.Disruption? {
        GatedDisruption.underWay(node, context).flatMap { $0.action == "reset" ? $0 : nil }
    }

    /// The node is back: in maintenance (metal/ISO), or configured again with a new boot ID when its
    /// config comes from cloud user data. Any other node back configured with a new boot ID was not
    /// reset: its sequence failed and machined rebooted it as it was (talos v1.13.9 main.go handle),
    /// unless it was found back once already (then it was re-configured since).
    static func verified(_ node: String, bootBefore: String, _ context: StepContext) async throws -> StepOutputs? {
        let access = TalosAccess.from(context)
        let probe = try await access.probe(node)
        probe.connection?.close()
        switch probe.mode {
        case .maintenance:
            markBack(node, context)
            return ["after": "maintenance"]
        case .unreachable, .tlsError:
            guard let address = await NodeLocator.inMaintenance(node, context) else { return nil }
            markBack(node, context)
            return ["after": "maintenance", "address": address]
        case .configured:
            let now = try? await access.client(node, .admin, timeout: .seconds(5)).bootID()
            guard let now, now != bootBefore else { return nil }
            let image = context.inventory.node(named: node).flatMap { context.inventory.image(named: $0.image.value) }
            if image?.platform.value == "aws" || underWay(node, context)?.phase == "back" { return ["after": "configured", "bootAfter": now] }
            throw NotWiped(description: "it rebooted (boot \(now.prefix(8))) with its config still active, so the reset sequence failed")
        default: return nil
        }
    }

    /// Once seen wiped, the reset is done whatever comes next: recorded (`back`), so a node
    /// configured again by later steps is never taken for a reset that failed. Not in a dry run.
    static func markBack(_ node: String, _ context: StepContext) {
        guard !context.dryRun, let record = underWay(node, context), record.phase != "back" else { return }
        try? context.journal?.recordDisruption(node: node, run: record.runID, action: record.action, bootBefore: record.bootBefore,
                                                detail: record.detail, phase: "back")
    }

    /// The reset is over: the node was brought back (or retired). Called by the steps that follow it.
    public static func clear(_ context: StepContext, node: String) {
        try? context.journal?.endDisruption(node: node)
    }
}
