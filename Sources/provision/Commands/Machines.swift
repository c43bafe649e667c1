import ArgumentParser
import Foundation
import ProvisionCore
import Providers
import Steps

struct Machines: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "machines",
        abstract: "The machines under the cluster: make them exist and run, list them, remove a VM.",
        subcommands: [Up.self, List.self, Down.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Create and start the inventory's VMs and wake its bare metal; nothing else.",
            discussion: """
                Idempotent: running machines are left alone. Journaled and locked like `up`.

                Bare metal is woken with Wake-on-LAN packets until `bootTimeout`. What that can do for a Mac mini: its config arms the NIC (an EthernetConfig with `wakeOnLan: [magic]` on `machine.link`, Talos 1.12+), and an armed mini may wake from a shutdown if its firmware does; a mini is not known to, and after a power cut it stays off. When the packets wake nothing the failure names the node: press its power button (a first boot from the Talos USB stick always needs it).

                Examples:
                  provision machines up homelab
                  provision machines up homelab --node cp2
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions
        @Argument(help: "An inventory, e.g. homelab.") var inventory: String
        @Option(help: "Only this node.") var node: String?

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Loader(output: output).inventory(inventory)
                var options = runOptions
                if let node {
                    guard inv.node(named: node) != nil else {
                        output.failure("\(inv.name) has no node \(node); nodes: \(inv.nodes.map(\.name.value).joined(separator: ", "))", key: "node.unknown")
                        throw Exit(status: .badInput)
                    }
                    // With its host's preparation (a storage pool to define), scoped to this node.
                    options.until = "machine@\(node)"
                }
                let session = RunSession(global: global, run: options, command: "machines up \(inv.name)", playbook: "machines-up", target: node)
                try await session.perform(inventory: inv)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "What each provider reports for each node: state, id, address, tags, and for a VM whether its host starts it (autostart).",
            discussion: "Examples:\n  provision machines list homelab\n  provision machines list demo --json")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "An inventory, e.g. homelab.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let loader = Loader(output: output)
                let inv = try loader.inventory(inventory)
                let redactor = Redactor()
                let resolver = CredentialResolver(baseDirectory: inv.directory, redactor: redactor)
                let context = StepContext(inventory: inv, stateDirectory: loader.stateDirectory(global, inventory: inv), runID: "list",
                                          credentials: resolver, events: EventBus(redactor: redactor, sinks: []))
                let providers = MachineProviders()
                var rows: [[String: Any]] = []
                for node in inv.nodes {
                    var row: [String: Any] = ["node": node.name.value, "provider": node.machine.provider.value]
                    do {
                        let state = try await providers.provider(for: node, context: context).observe(node, in: inv)
                        row["state"] = state.power.rawValue
                        row["id"] = state.id ?? NSNull()
                        row["address"] = state.address?.description ?? NSNull()
                        row["tags"] = state.tags
                        if let autostart = state.autostart { row["autostart"] = autostart }
                    } catch {
                        row["state"] = "error"
                        row["error"] = redactor.redact("\(error)")
                    }
                    rows.append(row)
                }
                if global.json {
                    output.document(["inventory": inv.name, "machines": rows])
                } else {
                    for row in rows {
                        let autostart = (row["autostart"] as? Bool).map { $0 ? "  autostart" : "  no autostart" } ?? ""
                        let detail = (row["error"] as? String).map { "  \($0)" } ?? "  \(row["id"] as? String ?? "-")  \(row["address"] as? String ?? "-")\(autostart)"
                        output.result("\(row["node"]!)  \(row["provider"]!)  \(row["state"]!)\(detail)")
                    }
                }
                if rows.contains(where: { $0["state"] as? String == "error" }) { throw Exit(status: .failed) }
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Stop and delete one node's VM (never bare metal). Asks you to type the node's name.",
            discussion: """
                Examples:
                  provision machines down homelab --node w1
                  provision machines down homelab --node w1 --yes      no prompt (scripts)

                Exit 0 done, 1 failed, 3 refused (bare metal, or no confirmation), 64 bad input.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions
        @Argument(help: "An inventory, e.g. homelab.") var inventory: String
        @Option(help: "The node whose VM to delete.") var node: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Loader(output: output).inventory(inventory)
                guard let spec = inv.node(named: node) else {
                    output.failure("\(inv.name) has no node \(node); nodes: \(inv.nodes.map(\.name.value).joined(separator: ", "))", key: "node.unknown")
                    throw Exit(status: .badInput)
                }
                if inv.provider(named: spec.machine.provider.value)?.kind.value == .metal {
                    output.failure("\(node) is bare metal and cannot be deleted; `provision safe-reset \(inv.name)/\(node)` is the only destructive verb for metal", key: "machines.metal")
                    throw Exit(status: .refused)
                }
                if !global.yes, !global.dryRun {
                    guard isatty(STDIN_FILENO) == 1 else {
                        output.failure("deleting \(node)'s VM asks for a typed confirmation, but stdin is not a terminal; pass --yes to confirm", key: "confirm.needed")
                        throw Exit(status: .refused)
                    }
                    FileHandle.standardError.write(Data("Type \(node) to delete its VM and disks: ".utf8))
                    guard readLine()?.trimmingCharacters(in: .whitespaces) == node else {
                        output.failure("not confirmed; nothing was deleted", key: "confirm.declined")
                        throw Exit(status: .refused)
                    }
                }
                let session = RunSession(global: global, run: runOptions, command: "machines down \(inv.name) --node \(node)", playbook: "machines-down", target: node)
                try await session.perform(inventory: inv)
            }
        }
    }
}
