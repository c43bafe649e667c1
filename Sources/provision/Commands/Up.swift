import ArgumentParser
import ProvisionCore

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Converge the cluster: machines, Talos, etcd, Cilium, secrets foundation.",
        discussion: """
            Runs playbooks/up.yaml (or --playbook). Each step reads live state first and changes only what differs, so running it again on a converged cluster changes nothing, and a run that was interrupted (Ctrl-C, crash, power cut) continues where it stopped.

            On a running cluster a changed inventory is applied, never ignored: a node whose rendered config differs from its active one gets it live (NO_REBOOT) when Talos says it can, otherwise STAGED and then one gated reboot: etcd healthy with no alarm and not at 2 members, the node drained, rebooted, back with the new boot and config, etcd healthy again, uncordoned; control planes strictly one at a time, workers --max-parallel at a time. REBOOT and AUTO are never sent to a running node. New nodes in the inventory are brought in; nodes the inventory no longer lists are reported and left alone (`provision remove` retires them); a different Talos version is reported for `provision upgrade`. `provision plan` shows all of it first.

            Examples:
              provision up demo                          the built-in lab, no hardware
              provision up homelab --dry-run             what would change
              provision up homelab --max-parallel 2      two workers may reboot at once
              provision up homelab --until bootstrap     stop once etcd is bootstrapped
              provision up homelab --json > run.jsonl    JSON-lines events for scripts

            Exit 0 done, 1 failed, 2 changed (with --detailed-exitcode), 3 refused, 4 locked, 130 interrupted.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    @Option(help: "Playbook name (playbooks/NAME.yaml) or path.")
    var playbook: String = "up"

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let inv = try Loader(output: Output(json: global.json)).inventory(inventory)
            try await RunSession(global: global, run: runOptions, command: "up \(inv.name)", playbook: playbook).perform(inventory: inv)
        }
    }
}
