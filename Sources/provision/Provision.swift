import ArgumentParser

/// The `provision` command: argument parsing and output only; the work lives in the libraries.
@main
struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Take a Talos Linux homelab from bare hardware to a working cluster, and keep it there.",
        discussion: """
            An inventory (inventories/NAME.yaml) describes the cluster and its machines; playbooks (playbooks/*.yaml) are step graphs over it. Every run is journaled, resumable and safe to repeat: each step reads live state first and only changes what differs.

            Start here:
              scripts/bootstrap && provision up demo     a simulated cluster, no hardware needed
              provision validate homelab                  strict checks, file:line:column errors
              provision plan homelab                      what would change, read live; exit 2 = changes pending
              provision up homelab                        converge the real thing
              provision remove homelab/w3                 retire a node

            Exit codes: 0 done or nothing to do, 1 failed, 2 changes pending (plan) or applied (--detailed-exitcode), 3 refused for safety, 4 inventory locked by another run, 64 bad input, 130 interrupted.
            """,
        version: "0.1.0",
        subcommands: [
            Validate.self, Plan.self, Up.self, Status.self, SafeReset.self, Remove.self, Upgrade.self, Backup.self, Restore.self, Schedule.self, Report.self, GPU.self, Machines.self, Secrets.self, TalosConfigCommand.self, Config.self, Image.self, Probe.self, Lab.self,
        ]
    )
}
