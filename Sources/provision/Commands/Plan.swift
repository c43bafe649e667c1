import ArgumentParser
import Foundation
import ProvisionCore

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "What would change on the machines, read live: per node, what, why, and whether it costs a reboot.",
        discussion: """
            Observes everything the playbook would touch, read-only (a dry run of it: on a lab inventory the lab is started read-only), and says per node what would change and why: a machine to create or start; a machine config that differs from the node's active one, as a unified diff with every secret redacted, and whether Talos applies it live or needs a reboot (Talos' own answer, from a dry-run apply); a Kubernetes layer to converge. Nodes that etcd, Kubernetes or a provider knows but the inventory does not are listed as orphans: `up` never touches them; `provision remove` retires them. A node on another Talos version than the inventory's is listed as an advisory naming the upgrade command: `up` never upgrades. Steps that can only be judged once those changes are made are counted as waiting.

            With --graph, the static step graph instead, grouped by phase with the critical path and each step's state from the journal; it reads no live state.

            --json prints one document: {"inventory", "playbook", "changesPending", "changes": [{"node", "resource", "action", "reason", "reboot", "diff"}], "waiting": [step], "orphans": [{"node", "resource", "action": "orphan", "reason"}], "advisories": [{"node", "resource": "talos-version", "action": "upgrade", "reason"}], "failures": [{"step", "message"}]}. node is null for cluster-wide changes; reboot is true, false, or null when it is not a node's config.

            Examples:
              provision plan demo
              provision plan homelab --json | jq '.changes[] | select(.reboot)'
              provision plan homelab --graph --playbook safe-reset --target cp2

            Exit 0 when nothing would change, 2 when something would (an upgrade pending included), 1 when part of the cluster could not be observed, 64 on bad input.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    @Option(help: "Playbook name (playbooks/NAME.yaml) or path.")
    var playbook: String = "up"

    @Option(help: "Node or pool the playbook targets (safe-reset, gpu-*).")
    var target: String?

    @Flag(help: "Show the static step graph and the journal's record of it, instead of observing live state.")
    var graph = false

    @Option(name: .customLong("lock-timeout"), help: ArgumentHelp("How long to wait for a run on the same inventory before exiting 4.", valueName: "duration"))
    var lockTimeout: String = "0s"

    func run() async throws {
        try await runCommand { () throws(Exit) in
            if graph { try staticGraph() } else { try await live() }
        }
    }

    /// The dry run, printed as a plan.
    func live() async throws(Exit) {
        let output = Output(json: global.json)
        let inv = try Loader(output: output).inventory(inventory)
        guard let options = try? RunOptions.parse(["--lock-timeout", lockTimeout]) else {
            output.failure("--lock-timeout \(lockTimeout) is not a duration; write e.g. 30s or 10m", key: "flag.invalid")
            throw Exit(status: .badInput)
        }
        let collector = PlanCollector()
        let session = RunSession(global: global, run: options, command: "plan \(inv.name)", playbook: playbook, target: target, plan: collector)
        guard let (summary, graph) = try await session.perform(inventory: inv) else { return }
        if summary.interrupted { throw Exit(status: .interrupted) }
        let result = collector.result(graph: graph)
        PlanReport(inventory: inv.name, playbook: playbook, result: result).print(output)
        if summary.refused { throw Exit(status: .refused) }
        if !result.failures.isEmpty { throw Exit(status: .failed) }
        if !result.changes.isEmpty || !result.waiting.isEmpty || !result.advisories.isEmpty { throw Exit(status: .changes) }
    }

    /// The step graph by phase, marked from the journal; no live state.
    func staticGraph() throws(Exit) {
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            let inv = try loader.inventory(inventory)
            let (book, graph) = try loader.graph(playbook, inventory: inv, target: target)
            let journalPath = loader.stateDirectory(global, inventory: inv) + "/journal.sqlite"
            let journal = FileManager.default.fileExists(atPath: journalPath) ? try? Journal(path: journalPath) : nil
            let states = Dictionary(uniqueKeysWithValues: graph.instances.map { ($0.id, Self.state(of: $0, journal: journal)) })
            let phases = graph.phases
            let critical = graph.criticalPath { loader.catalog.info($0.kind)?.estimate ?? .seconds(1) }
            let pending = states.values.filter { $0 != "done" }.count

            if global.json {
                output.document([
                    "inventory": inv.name, "playbook": book.name, "changesPending": pending > 0,
                    "nodes": graph.instances.map { i -> [String: Any] in
                        ["id": i.id, "step": i.stepID, "kind": i.kind, "node": i.node ?? NSNull(), "phase": phases[i.id] ?? 0,
                         "needs": i.dependencies, "state": states[i.id] ?? "new",
                         "mutates": loader.catalog.info(i.kind)?.mutates ?? true]
                    },
                    "edges": graph.edges.map { ["from": $0.from, "to": $0.to] },
                    "criticalPath": ["steps": critical.path, "estimateSeconds": Int(critical.total.components.seconds)],
                ])
            } else {
                output.result("Plan: playbook \(book.name) on \(inv.name) · \(graph.instances.count) steps in \((phases.values.max() ?? -1) + 1) phases · \(pending) pending")
                let byPhase = Dictionary(grouping: graph.instances) { phases[$0.id] ?? 0 }
                let nameWidth = max("(cluster)".count, inv.nodes.map(\.name.value.count).max() ?? 0) + 1
                for phase in byPhase.keys.sorted() {
                    output.result("phase \(phase + 1)")
                    let items = byPhase[phase]!.sorted { ($0.node ?? "", $0.stepID) < ($1.node ?? "", $1.stepID) }
                    for item in items {
                        let who = (item.node ?? "(cluster)").padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                        let what = "\(item.stepID) [\(item.kind)]".padding(toLength: 48, withPad: " ", startingAt: 0)
                        output.result("  \(who) \(what) \(states[item.id] ?? "new")")
                    }
                }
                output.result("critical path (≈\(DurationText.format(critical.total))): \(critical.path.joined(separator: " → "))")
                if journal == nil { output.result("no journal yet: every step is new") }
            }
            if pending > 0 { throw Exit(status: .changes) }
    }

    static func state(of instance: StepInstance, journal: Journal?) -> String {
        guard let journal, let last = try? journal.latestAttempts()[instance.id] else { return "new" }
        switch last.outcome {
        case .applied, .satisfied: return last.inputsDigest == instance.inputsDigest ? "done" : "changed"
        case .failed: return "failed"
        default: return (try? journal.lastSuccess(step: instance.id)) != nil ? "done" : "new"
        }
    }
}
