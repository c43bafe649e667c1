import ArgumentParser
import Foundation
import ProvisionCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the journal knows of each node, and the last runs.",
        discussion: """
            Per node: role, provider, address, the last step that finished on it and how. Reads the
            journal without taking the lock, so it works while a run is in progress.

            Examples:
              provision status homelab
              provision status homelab --json | jq '.nodes[] | select(.lastOutcome == "failed")'
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            let inv = try loader.inventory(inventory)
            let stateDir = loader.stateDirectory(global, inventory: inv)
            let path = stateDir + "/journal.sqlite"
            var journal: Journal?
            if FileManager.default.fileExists(atPath: path) {
                do throws(JournalError) { journal = try Journal(path: path) } catch {
                    output.failure(error.description, key: "journal.unreadable")
                    throw Exit(status: .failed)
                }
            }
            let attempts = (try? journal?.allAttempts()) ?? []
            let runs = (try? journal?.runs(limit: 5)) ?? []
            let byNode = Dictionary(grouping: attempts.filter { $0.node != nil }) { $0.node! }

            var rows: [[String: Any]] = []
            for node in inv.nodes {
                let name = node.name.value
                let last = byNode[name]?.last
                let failed = byNode[name]?.last { $0.outcome == .failed }
                var row: [String: Any] = [
                    "name": name, "role": node.role.value.rawValue, "provider": node.machine.provider.value,
                    "address": node.address.value.description, "talosVersion": node.talosVersion?.value ?? inv.cluster.talosVersion.value,
                ]
                row["lastStep"] = last?.stepID ?? NSNull()
                row["lastOutcome"] = last?.outcome.rawValue ?? NSNull()
                row["lastError"] = (last?.outcome == .failed ? failed?.error : nil) ?? NSNull()
                rows.append(row)
            }
            if global.json {
                output.document([
                    "inventory": inv.name, "stateDirectory": stateDir, "nodes": rows,
                    "runs": runs.map { ["id": $0.id, "playbook": $0.playbook, "command": $0.command,
                                        "startedAt": ISO8601DateFormatter().string(from: $0.startedAt),
                                        "outcome": $0.outcome ?? (($0.finishedAt == nil) ? "running or killed" : "unknown")] },
                    "liveProbe": "unavailable in this build",
                ])
                return
            }
            output.result("\(inv.name): \(Validate.summary(inv)) · state \(stateDir)")
            if runs.isEmpty { output.result("no runs yet: `provision up \(inv.name)` starts one") }
            for run in runs.prefix(3) {
                output.result("  run \(run.id) \(run.command): \(run.outcome ?? (run.finishedAt == nil ? "running, or killed" : "?"))")
            }
            let header = ["NODE", "ROLE", "PROVIDER", "ADDRESS", "TALOS", "LAST STEP", "OUTCOME"]
            let table = rows.map { r in
                [r["name"], r["role"], r["provider"], r["address"], r["talosVersion"], r["lastStep"], r["lastOutcome"]].map { ($0 as? String) ?? "-" }
            }
            let widths = (0..<header.count).map { col in ([header[col]] + table.map { $0[col] }).map(\.count).max() ?? 0 }
            for line in [header] + table {
                output.result(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
            for row in rows { if let error = row["lastError"] as? String { output.result("  \(row["name"]!): \(error)") } }
            output.result("live probe of nodes: not available in this build (needs the Talos API client)")
        }
    }
}
