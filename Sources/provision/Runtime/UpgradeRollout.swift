import Foundation
import ProvisionCore
import Steps
import TalosKit

/// The ordered rollout an upgrade would make, read live before anything is touched: per node what
/// it runs, what the inventory wants, and the hops between (control planes first, one at a time;
/// then workers, --max-parallel at a time), then the Kubernetes moves, one component on one node at
/// a time. Bad targets are refused here, with exit 64.
struct UpgradeRollout {
    struct Hop {
        var node: String
        var controlPlane: Bool
        var from: String
        var to: String
        var path: [String]
        var schematicChange: Bool
        var legacy: Bool
    }

    /// Which parts an upgrade covers: `--talos-only`, `--kubernetes-only`, or both (Talos first).
    enum Scope: String { case both, talos, kubernetes }

    var inventory: String
    var hops: [Hop]
    var kubernetes: KubernetesSurvey?
    var maxParallel: Int
    var unreachable: [String]

    var isEmpty: Bool { hops.isEmpty && (kubernetes?.moves.isEmpty ?? true) }

    static func read(_ inv: Inventory, stateDirectory: String, output: Output, only: String?, allowDowngrade: Bool, maxParallel: Int,
                     scope: Scope) async throws(Exit) -> UpgradeRollout {
        let (talos, kubernetes) = await LiveLook.with(inv, stateDirectory: stateDirectory, output: output) { context in
            let talos = scope == .kubernetes ? Steps.UpgradeSurvey() : await Steps.UpgradeSurvey.read(context, only: only, allowDowngrade: allowDowngrade)
            // Kubernetes is cluster-wide: not part of a one-node upgrade; checked against the Talos each node will run.
            guard scope != .talos, only == nil else { return (talos, KubernetesSurvey?.none) }
            let after = Dictionary(uniqueKeysWithValues: talos.nodes.map { ($0.node, $0.wanted) })
            return (talos, await KubernetesSurvey.read(context, talosAfter: after))
        }
        let problems = talos.problems + (kubernetes?.problems ?? [])
        if !problems.isEmpty {
            output.failure(problems.joined(separator: "\n") + "\nnothing was touched", key: "upgrade.refused")
            throw Exit(status: .badInput)
        }
        let hops = talos.nodes.map { Hop(node: $0.node, controlPlane: $0.controlPlane, from: $0.running, to: $0.wanted, path: $0.path,
                                         schematicChange: $0.schematicChange, legacy: $0.legacy) }
        return UpgradeRollout(inventory: inv.name, hops: hops, kubernetes: kubernetes, maxParallel: max(1, maxParallel),
                              unreachable: (talos.unreachable + (kubernetes?.unreachable ?? [])).uniqued())
    }

    func print(_ output: Output) {
        let controlPlanes = hops.filter(\.controlPlane), workers = hops.filter { !$0.controlPlane }
        let moves = kubernetes?.moves ?? []
        if output.json {
            output.document(["inventory": inventory, "rollout": hops.map { hop in
                ["node": hop.node, "controlPlane": hop.controlPlane, "from": hop.from, "to": hop.to, "path": hop.path,
                 "schematicChange": hop.schematicChange, "api": hop.legacy ? "legacy" : "lifecycle"] as [String: Any]
            }, "kubernetes": moves.map { ["node": $0.node, "component": $0.component.processName, "from": $0.from, "to": kubernetes?.to ?? ""] },
            "unreachable": unreachable])
            return
        }
        if isEmpty {
            output.result("Upgrade \(inventory): nothing to do")
        }
        if !hops.isEmpty {
            output.result("Upgrade \(inventory): Talos on \(hops.count) node\(hops.count == 1 ? "" : "s"), control planes one at a time, then workers \(maxParallel) at a time")
        }
        for (index, hop) in controlPlanes.enumerated() { output.result("  \(index + 1). \(Self.line(hop))") }
        if !workers.isEmpty { output.result("  then the workers, \(maxParallel) at a time, each as soon as a slot is free:") }
        for hop in workers { output.result("   - \(Self.line(hop))") }
        if let kubernetes, !moves.isEmpty {
            output.result("\(hops.isEmpty ? "Upgrade \(inventory): " : "then ")Kubernetes \(kubernetes.from) -> \(kubernetes.to), one component on one node at a time (NO_REBOOT):")
            for (index, move) in moves.enumerated() { output.result("  \(index + 1). \(move.node) \(move.component.processName) \(move.from) -> \(kubernetes.to)") }
        }
        for name in unreachable { output.result("  \(name): does not answer; left for a later run") }
    }

    static func line(_ hop: Hop) -> String {
        // Every hop, in order: `v1.12.6 -> v1.12.11 -> v1.13.9`.
        let hops = ([hop.from] + (hop.path.last == hop.to ? hop.path : hop.path + [hop.to])).joined(separator: " -> ")
        return "\(hop.node) \(hops)\(hop.schematicChange ? " (new schematic)" : "")  [\(hop.legacy ? "legacy MachineService/Upgrade" : "ImageService/Pull + LifecycleService/Upgrade + Reboot")]"
    }
}
