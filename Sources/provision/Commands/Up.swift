import ArgumentParser
import ProvisionCore

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Converge the cluster: machines, Talos, etcd, Cilium, secrets foundation.",
        discussion: """
            Runs playbooks/up.yaml (or --playbook). Each step reads live state first and changes only
            what differs, so running it again on a converged cluster changes nothing, and a run that
            was interrupted (Ctrl-C, crash, power cut) continues where it stopped.

            Examples:
              provision up demo                          the built-in lab, no hardware
              provision up homelab --dry-run             what would change
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
