import ArgumentParser
import Foundation
import ProvisionCore
import Steps

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Recover a cluster whose etcd lost quorum from a backup, in Talos' documented order; or rebuild a lost state directory.",
        discussion: """
            Refuses (exit 3, nothing touched) while etcd still has quorum: some control plane answers for its members, and a restore would throw away everything written since the backup. If quorum can be saved, save it instead; --force restores anyway.

            Otherwise, in order: the snapshot is fetched (`--from latest`, a set's name or time from `provision backup list`, or a local snapshot file, plain or age), its SHA-256 checked against the manifest, decrypted and checked whole; the set must be this cluster's. You type the inventory's name (or pass --yes). Every control plane whose etcd is broken has its EPHEMERAL partition wiped (its config stays) and reboots; once etcd is Preparing on all of them, the snapshot goes to exactly one (EtcdRecover) and etcd is bootstrapped from it there (Bootstrap with recover_etcd); the others join. Then every member must be healthy and the Kubernetes API answer. Every phase is journaled: the same command again after an interruption resumes and never bootstraps twice. Run `provision up` afterwards to converge the rest.

            With --state-only nothing in the cluster is touched: the secrets bundle is taken from the set into an empty state directory (a new laptop, a cron host), given the age identity, so `status`, `backup` and `up` work again.

            Examples:
              provision restore homelab --from latest
              provision restore homelab --from 20261202T030000Z --yes
              provision restore homelab --from ./etcd.snapshot.age
              provision restore homelab --state-only --from latest

            Exit 0 done, 1 failed, 3 refused for safety (quorum, another cluster's set), 4 locked, 64 bad input, 130 interrupted.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions
    @Argument(help: "Inventory name or path.") var inventory: String
    @Option(help: "`latest`, a set's name or time, or a snapshot file.") var from: String = "latest"
    @Flag(help: "Restore even though etcd still has quorum. Everything written since the backup is lost.") var force = false
    @Flag(help: "Only rebuild the state directory (secrets bundle) from the set; the cluster is not touched.") var stateOnly = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            if stateOnly {
                try await StateRestore(global: global, inventory: inventory, from: from, output: output).run()
                return
            }
            let inv = try Loader(output: output).inventory(inventory)
            if inv.backup == nil, !FileManager.default.fileExists(atPath: from) {
                output.failure("inventory \(inv.name) has no `backup:` section to restore from; add one, or pass --from a snapshot file", key: "backup.missing")
                throw Exit(status: .badInput)
            }
            if !global.yes, !global.dryRun, isatty(STDIN_FILENO) != 1 {
                output.failure("restore asks for a typed confirmation, but stdin is not a terminal; pass --yes to confirm non-interactively", key: "confirm.needed")
                throw Exit(status: .refused)
            }
            var session = RunSession(global: global, run: runOptions, command: "restore \(inv.name) --from \(from)", playbook: "restore")
            session.arguments = ["from": from, "force": force ? "true" : "false", "yes": global.yes ? "true" : "false"]
            try await session.perform(inventory: inv)
        }
    }
}
