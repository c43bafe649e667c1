import ArgumentParser
import Foundation
import ProvisionCore

struct SafeReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safe-reset",
        abstract: "Wipe one node's STATE and EPHEMERAL safely, then bring it back into the cluster.",
        discussion: """
            Checks that the node answering is the node the inventory names, that etcd keeps quorum without it and that the cluster is healthy; snapshots etcd; asks you to type the node's name; resets with reboot, gracefully (a control plane leaves etcd itself) unless --force overrode the etcd check, when it resets without leaving etcd (Talos' advice: etcd would refuse the leave); verifies, and reports at once a reset that Talos gave up on (its sequence failed: kubelet and pods stopped, nothing wiped, the node reboots as it was); re-applies the config and waits for the node to rejoin. etcd's last member (a single control plane) can only be reset with --force: its etcd is wiped with it, and it comes back bootstrapped from the snapshot taken first, so the cluster is as it was then (anything written during the reset is lost). User data disks are never touched. Every phase is journaled: running the same command again after an interruption resumes and never resets twice.

            Examples:
              provision safe-reset homelab/cp2
              provision safe-reset cp2 --yes             no prompt (scripts)
              provision safe-reset homelab/cp2 --force   even if the quorum check objects
              provision safe-reset lab/cp1 --force       the only control plane: back from the snapshot

            Exit 0 done, 1 failed, 3 refused for safety, 4 locked, 130 interrupted.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Argument(help: "INVENTORY/NODE, or NODE when only one inventory has it.")
    var node: String

    @Flag(help: "Proceed even if the quorum or health check refuses. Dangerous.")
    var force = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let (inv, name) = try Loader(output: output).member(node, pools: false)
            if !global.yes, !global.dryRun, isatty(STDIN_FILENO) != 1 {
                output.failure("safe-reset asks for a typed confirmation, but stdin is not a terminal; pass --yes to confirm non-interactively", key: "confirm.needed")
                throw Exit(status: .refused)
            }
            var session = RunSession(global: global, run: runOptions, command: "safe-reset \(inv.name)/\(name)", playbook: "safe-reset", target: name)
            session.arguments = ["force": force ? "true" : "false", "yes": global.yes ? "true" : "false"]
            try await session.perform(inventory: inv)
        }
    }
}
