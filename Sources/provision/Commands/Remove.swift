import ArgumentParser
import Foundation
import ProvisionCore
import Steps

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Retire a node, listed in the inventory or orphaned: drain it, take it out of etcd, reset it, delete its Node and its VM.",
        discussion: """
            Checks first, and refuses (exit 3, nothing touched) when the machine answering is not this cluster's, when it calls itself by another name, or when etcd would lose quorum or be left with 2 members without it (add a control plane first; --force overrides). Then asks you to type the node's name, cordons and drains it (PodDisruptionBudgets respected), and takes it out of etcd: a graceful reset of STATE and EPHEMERAL when it answers (Talos leaves etcd itself, then wipes; with --force overriding etcd's rules, a reset without the leave, the member then removed by ID), its member removed by ID through a healthy control plane when it is dead. Its Kubernetes Node is deleted, then its VM. Bare metal is never deleted: a Mac mini is left on, in maintenance mode, and the run says so.

            The node may still be in the inventory, or already gone from it (an orphan that `provision plan` or `status` lists: it is found in etcd, Kubernetes or its provider). Delete it from the inventory afterwards, or `up` brings it back. Every phase is journaled: the same command again after an interruption resumes and never resets twice.

            Examples:
              provision remove homelab/w3
              provision remove demo/cp3 --yes
              provision remove homelab/cp2 --force       even if etcd's rules object

            Exit 0 done, 1 failed, 3 refused for safety, 4 locked, 64 no such node (the nodes and orphans are listed), 130 interrupted.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Argument(help: "INVENTORY/NODE, or NODE when only one inventory lists it.")
    var node: String

    @Flag(help: "Go on even if the etcd checks refuse. Dangerous.")
    var force = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            var (inv, name) = try loader.reference(node)
            if inv.node(named: name) == nil {
                let stateDir = loader.stateDirectory(global, inventory: inv)
                let (orphans, _) = await LiveLook.with(inv, stateDirectory: stateDir, output: output) { context in await OrphanFinder(context: context).find() }
                guard let orphan = orphans.first(where: { $0.name == name }) else {
                    let known = inv.nodes.map(\.name.value) + orphans.map { "\($0.name) (orphan)" }
                    output.failure("inventory `\(inv.name)` has no node `\(name)` and the cluster has no orphan of that name; nodes: \(known.joined(separator: ", "))",
                                   key: "reference.not-found")
                    throw Exit(status: .badInput)
                }
                output.note("\(name) is not in the inventory: an orphan (in \(orphan.seenIn.joined(separator: ", "))); removing it")
                inv = inv.adding(.orphan(name: orphan.name, controlPlane: orphan.controlPlane, address: orphan.address.flatMap(IPv4Address.init),
                                         provider: orphan.provider, image: inv.images.first?.name.value ?? ""))
            }
            if !global.yes, !global.dryRun, isatty(STDIN_FILENO) != 1 {
                output.failure("remove asks for a typed confirmation, but stdin is not a terminal; pass --yes to confirm non-interactively", key: "confirm.needed")
                throw Exit(status: .refused)
            }
            var session = RunSession(global: global, run: runOptions, command: "remove \(inv.name)/\(name)", playbook: "remove", target: name)
            session.arguments = ["force": force ? "true" : "false", "yes": global.yes ? "true" : "false"]
            try await session.perform(inventory: inv)
            if !global.dryRun, inv.node(named: name).map({ inv.provider(named: $0.machine.provider.value)?.kind.value == .metal }) == true {
                output.note("\(name) is bare metal: it is left on, in maintenance mode; unplug it or give it a config again")
            }
        }
    }
}
