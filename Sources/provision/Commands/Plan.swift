import ArgumentParser
import Foundation
import ProvisionCore

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the step graph a playbook expands to, and what is pending.",
        discussion: """
            Expands the playbook over the inventory and prints it grouped by phase (steps in one phase
            can run together) and node, with the critical path. Each step is marked from the journal:
            `new` (never done), `done`, `changed` (done with other inputs) or `failed`. A run always
            re-checks live state before acting; the plan reads no live state and touches nothing.

            Examples:
              provision plan homelab
              provision plan homelab --playbook safe-reset --target cp2
              provision plan demo --json | jq '.edges | length'

            Exit 0 when nothing is pending, 2 when changes are pending, 64 on bad input.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    @Option(help: "Playbook name (playbooks/NAME.yaml) or path.")
    var playbook: String = "up"

    @Option(help: "Node or pool the playbook targets (safe-reset, gpu-*).")
    var target: String?

    func run() async throws {
        try await runCommand { () throws(Exit) in
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
                let nameWidth = max(8, (inv.nodes.map(\.name.value.count).max() ?? 0) + 1)
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
