import Foundation
import ProvisionCore
import TalosKit

/// What a node runs and what the inventory wants it to run: version and schematic.
struct NodeRelease: Sendable, Equatable {
    var version: String
    var schematic: String?
}

/// `talos.upgrade`: brings a node to the inventory's Talos version and schematic, one hop per minor
/// (TalosReleases.path), each hop a `GatedDisruption`: on a control plane the etcd gate (Talos
/// 1.13's upgrade API has none), drain, the boot ID recorded, then on 1.13+ ImageService/Pull and
/// LifecycleService/Upgrade into the same containerd instance and a Reboot, on 1.12 the legacy
/// MachineService/Upgrade (which reboots itself); verified by a new boot running the target version
/// and schematic. A node that comes back on its old version fell back (its new image did not
/// boot): the rollout stops there and nothing is sent to it again until `--retry`.
public struct TalosUpgrade: StepKind {
    public let info = StepKindInfo(name: "talos.upgrade", summary: "upgrade a node's Talos to the inventory's version and schematic, gated, verified, never resent after a fallback",
                                   estimate: .seconds(180), scope: .node, defaultTimeout: .seconds(3600), parameters: [])

    public init() {}

    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] {
        TalosReboot.disruptionSlot(step.node, context)
    }

    static func desired(_ node: String, _ context: StepContext) async throws -> NodeRelease {
        guard let spec = context.inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        let renderer = try await TalosAccess.from(context).renderer()
        return NodeRelease(version: spec.talosVersion?.value ?? context.inventory.cluster.talosVersion.value, schematic: renderer.schematics[spec.image.value])
    }

    static func running(_ client: TalosClient) async throws -> NodeRelease {
        NodeRelease(version: try await client.version().version.tag, schematic: try await client.schematic())
    }

    /// A fallback recorded by an earlier run: the node is left alone until the operator retries.
    static func fellBack(_ node: String, _ context: StepContext) throws {
        guard let record = GatedDisruption.underWay(node, context), record.action == "upgrade", record.phase == "failed" else { return }
        if context.arguments["retry"] == "true", context.arguments["node"] == node {
            try context.journal?.endDisruption(node: node)
            return
        }
        throw StepError.permanent("""
            \(node)'s upgrade (\(record.detail)) fell back in run \(record.runID): the new image did not boot and Talos booted the old one. \
            Nothing is sent to it again on its own (resending overwrote the good slot and bricked a node in omni#1552). Look at its console; \
            to try once more deliberately: `provision upgrade \(context.inventory.name) --node \(node) --retry`
            """)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        if let only = context.arguments["node"], only != node { return .satisfied(["upgrade": "not selected"]) }
        if context.arguments["scope"] == "kubernetes" { return .satisfied(["upgrade": "Kubernetes only"]) }
        try Self.fellBack(node, context)
        if let record = GatedDisruption.underWay(node, context), record.action == "upgrade" {
            return .pending("\(node): its upgrade (\(record.detail)) is under way since run \(record.runID)")
        }
        let client = try await TalosAccess.from(context).client(node, .admin)
        let (now, want) = (try await Self.running(client), try await Self.desired(node, context))
        guard now != want else { return .satisfied(["version": now.version, "schematic": now.schematic ?? ""]) }
        let hops = try Self.path(now, want, context)
        let reason = "\(now.version) -> \(want.version)" + (now.schematic != want.schematic ? " (schematic \(now.schematic?.prefix(8) ?? "none") -> \(want.schematic?.prefix(8) ?? "none"))" : "")
            + (hops.count > 1 ? " via \(hops.dropLast().joined(separator: ", "))" : "")
        context.plan(PlannedChange(node: node, resource: "talos-version", action: "upgrade", reason: reason, reboot: true), step: step)
        return .pending("\(node): \(reason)")
    }

    /// The hops a node goes through; a schematic change alone is one hop to the same version.
    static func path(_ now: NodeRelease, _ want: NodeRelease, _ context: StepContext) throws -> [String] {
        do {
            let hops = try TalosReleases.path(from: now.version, to: want.version, kubernetes: KubernetesSurvey.running(context),
                                              allowDowngrade: context.arguments["allowDowngrade"] == "true")
            return hops.isEmpty ? [want.version] : hops
        } catch {
            throw StepError.permanent("\(error)")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        guard let spec = context.inventory.node(named: node), let image = context.inventory.image(named: spec.image.value) else {
            throw StepError.permanent("node \(node) is not in the inventory")
        }
        let access = TalosAccess.from(context)
        let want = try await Self.desired(node, context)
        var outputs: StepOutputs = [:]
        while true {
            let now = try await Self.running(try await access.client(node, .admin))
            // A hop recorded by a killed run is resumed, never sent again; otherwise the next hop.
            let record = GatedDisruption.underWay(node, context)
            var hop = record.flatMap { $0.action == "upgrade" ? String($0.detail.split(separator: " ").last ?? "") : nil }
            if hop == nil, now != want { hop = try Self.path(now, want, context).first }
            guard let hop else { break }
            let installer = ImageURLs(schematicID: want.schematic ?? "", version: hop, platform: image.platform.value).installer
            try await Self.warnAboutKernelArguments(node, step, context)
            let legacy = !(TalosReleases.minor(of: now.version)?.lifecycleAPI ?? true)
            let from = now
            let pullDeadline = access.scaled(.seconds(900), floor: .seconds(60))
            if legacy, record == nil {
                // Before the node is drained: a schematic's first request has Image Factory build it.
                try await Self.progress("\(node): pulling \(installer) (Image Factory builds a new schematic's installer on its first request)", step, context) {
                    try await access.client(node, .admin).imagePull(installer, deadline: pullDeadline)
                }
            }
            let disruption = GatedDisruption(step: step, context: context, node: node, action: "upgrade", detail: "\(legacy ? "legacy" : "lifecycle") to \(hop)")
            outputs = try await disruption.run(send: { client in
                if legacy {
                    let ack = try await Self.progress("\(node): upgrade sent; Talos pulls and checks the installer before it answers", step, context) {
                        try await client.legacyUpgrade(installer, deadline: pullDeadline)
                    }
                    return "legacy upgrade sent (\(ack))"
                }
                _ = try await client.pull(installer)
                let installed = try await client.installUpgrade(installer)
                return "pulled \(installer) and installed it into the other slot (\(installed.messages.last ?? "ok")); reboot sent (actor \(try await client.reboot()))"
            }, cameBack: { client in
                let after = try await Self.running(client)
                if after.version == from.version, from.version != hop {
                    try context.journal?.recordDisruption(node: node, run: context.runID, action: "upgrade", bootBefore: "", detail: "to \(hop)", phase: "failed")
                    return "it runs \(after.version) again: the \(hop) image failed to boot and Talos fell back to its old slot; the rollout stops here and nothing is resent"
                }
                if after.version != hop { return "it runs \(after.version), not \(hop)" }
                if hop == want.version, after.schematic != want.schematic {
                    return "it runs schematic \(after.schematic ?? "none"), not \(want.schematic ?? "none")"
                }
                return nil
            })
            outputs["version"] = hop
        }
        try await Self.recordInstaller(node, ImageURLs(schematicID: want.schematic ?? "", version: want.version, platform: image.platform.value).installer, step, context)
        return outputs
    }

    /// Runs `body`, saying what it waits for when it starts and every 30 seconds (on the lab's clock)
    /// until it ends: a pull Talos reports no progress for must still show it is alive.
    static func progress<T: Sendable>(_ what: String, _ step: StepInstance, _ context: StepContext, _ body: () async throws -> T) async throws -> T {
        context.log(what, step: step)
        let started = ContinuousClock.now
        let every = TalosAccess.from(context).scaled(.seconds(30), floor: .milliseconds(200))
        let ticker = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: every)
                context.log("\(what): \(DurationText.format(ContinuousClock.now - started)) so far", step: step)
            }
        }
        defer { ticker.cancel() }
        return try await body()
    }

    /// After the upgrade the node's config is brought to the one the inventory renders for its new
    /// version (the installer it now runs; a 1.12 node's `machine.network` becomes 1.13 documents),
    /// sent NO_REBOOT when Talos takes it live. A change that would need a reboot is left to `up`
    /// (gated there); only the installer is recorded now, so a later reinstall takes the new one.
    static func recordInstaller(_ node: String, _ installer: String, _ step: StepInstance, _ context: StepContext) async throws {
        let client = try await TalosAccess.from(context).client(node, .admin)
        guard let (drift, live) = try await TalosApplyConfig.pendingChange(node, context) else { return }
        if live {
            _ = try await client.applyConfiguration(drift.desiredText, mode: .noReboot)
            context.log("\(node): its config, rendered for the version it now runs, applied live", step: step)
            return
        }
        guard let text = try await client.machineConfig(.active), var documents = try? ConfigDocuments(yaml: text),
              documents.installImage != nil, documents.installImage != installer else { return }
        documents.installImage = installer
        _ = try await client.applyConfiguration(documents.yaml, mode: .noReboot)
        context.log("\(node): its config now names the installer it runs; the rest of its config change needs a reboot: `provision up \(context.inventory.name)` makes it, gated", level: .warning, step: step)
    }

    /// The 1.13 upgrade API does not pass `machine.install.extraKernelArgs`: on a GRUB node that
    /// does not take its command line from the UKI they are silently dropped (talos#13967).
    static func warnAboutKernelArguments(_ node: String, _ step: StepInstance, _ context: StepContext) async throws {
        guard let text = try await TalosAccess.from(context).client(node, .admin).machineConfig(.active),
              let documents = try? ConfigDocuments(yaml: text),
              let install = documents.documents.first(where: { $0["version"]?.stringValue == "v1alpha1" })?["machine"]?["install"],
              case let .list(arguments)? = install["extraKernelArgs"], !arguments.isEmpty,
              install["grubUseUKICmdline"] != .bool(true) else { return }
        context.log("\(node) relies on machine.install.extraKernelArgs and does not take its command line from the UKI: the 1.13 upgrade drops those arguments on GRUB; move them into the schematic", level: .warning, step: step)
    }
}
