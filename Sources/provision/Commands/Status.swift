import ArgumentParser
import Foundation
import ProvisionCore
import Steps
import TalosKit

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Each node live (machine, Talos, etcd, Kubernetes), GPU instances, and the last runs.",
        discussion: """
            Per node: role, address, what its provider reports, its Talos stage and version, whether it is an etcd member, whether Kubernetes calls it Ready, and the last step the journal recorded for it; then the cluster's version contract and the Kubernetes version it runs, orphans (machines etcd, Kubernetes or a provider has that the inventory does not list) and every GPU instance with its expiry. Reads without taking the lock and changes nothing, so it works while a run is in progress. --offline shows the journal only.

            Examples:
              provision status homelab
              provision status homelab --json | jq '.nodes[] | select(.lastOutcome == "failed")'
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    @Flag(help: "Do not contact machines, Talos, Kubernetes or EC2; show what the journal knows.")
    var offline = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            let inv = try loader.inventory(inventory)
            let stateDir = loader.stateDirectory(global, inventory: inv)
            if !offline { await SharedState.adopt(inv, stateDirectory: stateDir, output: output) }
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

            let live = offline ? nil : await Self.live(inv, stateDir: stateDir, output: output)
            let contract = VersionContract.load(stateDirectory: stateDir)
            let kubernetes = KubernetesVersions.load(stateDirectory: stateDir)
            var rows: [[String: Any]] = []
            for (index, node) in inv.nodes.enumerated() {
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
                if let state = live?.nodes[index] {
                    row["machine"] = state.machine
                    row["talos"] = state.talos
                    if let version = state.version { row["talosVersion"] = version }
                    row["schematic"] = state.schematic ?? NSNull()
                    row["etcdMember"] = state.etcdMember.map { $0 as Any } ?? NSNull()
                    row["kubernetes"] = state.kubernetes
                }
                rows.append(row)
            }
            if global.json {
                output.document([
                    "inventory": inv.name, "stateDirectory": stateDir, "nodes": rows,
                    "versionContract": contract.map { ["talos": $0.minor, "frozenFrom": $0.frozenFrom,
                                                       "frozenAt": ISO8601DateFormatter().string(from: $0.frozenAt)] as [String: Any] } ?? NSNull(),
                    "kubernetesVersion": kubernetes.map { ["version": $0.version, "upgradingTo": $0.target ?? NSNull()] as [String: Any] } ?? NSNull(),
                    "runs": runs.map { ["id": $0.id, "playbook": $0.playbook, "command": $0.command,
                                        "startedAt": ISO8601DateFormatter().string(from: $0.startedAt),
                                        "outcome": $0.outcome ?? (($0.finishedAt == nil) ? "running or killed" : "unknown")] },
                    "gpuInstances": (live?.instances ?? []).map { ["pool": $0.pool, "id": $0.id, "state": $0.state,
                                                                  "address": $0.address ?? "", "expiresAt": $0.expiresAt ?? ""] },
                    "orphans": (live?.orphans ?? []).map { ["name": $0.name, "address": $0.address ?? NSNull(), "controlPlane": $0.controlPlane,
                                                           "seenIn": $0.seenIn] as [String: Any] },
                    "notes": live?.notes ?? ["offline: the journal only"],
                ])
                return
            }
            output.result("\(inv.name): \(Validate.summary(inv)) · state \(stateDir)")
            if let contract {
                output.result("version contract: Talos \(contract.minor) (frozen from \(contract.frozenFrom) when the cluster was created; configs keep its defaults)")
            }
            if let kubernetes {
                let wanted = inv.cluster.kubernetesVersion.value
                output.result("kubernetes: \(kubernetes.version)" + (kubernetes.target.map { ", an upgrade to \($0) under way (`provision upgrade \(inv.name)` finishes it)" }
                    ?? (kubernetes.version != wanted ? "; the inventory says \(wanted): `provision upgrade \(inv.name) --kubernetes-only`" : "")))
            }
            if runs.isEmpty { output.result("no runs yet: `provision up \(inv.name)` starts one") }
            for run in runs.prefix(3) {
                output.result("  run \(run.id) \(run.command): \(run.outcome ?? (run.finishedAt == nil ? "running, or killed" : "?"))")
            }
            let header = ["NODE", "ROLE", "ADDRESS", "MACHINE", "TALOS", "VERSION", "ETCD", "KUBERNETES", "LAST STEP", "OUTCOME"]
            let table = rows.map { r in
                let etcd = (r["etcdMember"] as? Bool).map { $0 ? "member" : "absent" } ?? "-"
                return [r["name"], r["role"], r["address"], r["machine"], r["talos"], r["talosVersion"], etcd, r["kubernetes"], r["lastStep"], r["lastOutcome"]]
                    .map { ($0 as? String) ?? "-" }
            }
            output.result(Table.render(header, table))
            for row in rows { if let error = row["lastError"] as? String { output.result("  \(row["name"]!): \(error)") } }
            for instance in live?.instances ?? [] {
                output.result("gpu \(instance.pool): \(instance.id) \(instance.state) \(instance.address ?? "-") expires \(instance.expiresAt ?? "(no tag)")")
            }
            for orphan in live?.orphans ?? [] {
                output.result("orphan \(orphan.name)\(orphan.address.map { " (\($0))" } ?? ""): in \(orphan.seenIn.joined(separator: ", ")) but not in the inventory; `provision remove \(inv.name)/\(orphan.name)` retires it")
            }
            for note in live?.notes ?? [] { output.note(note) }
        }
    }

    /// Live state, read without changing anything (a lab inventory's lab read-only).
    static func live(_ inv: Inventory, stateDir: String, output: Output) async -> LiveStatus {
        await LiveLook.with(inv, stateDirectory: stateDir, output: output) { context in await LiveStatus.read(context) }
    }
}
