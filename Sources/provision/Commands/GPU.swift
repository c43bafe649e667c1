import ArgumentParser
import Foundation
import ProvisionCore

struct GPU: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu",
        abstract: "Launch and tear down on-demand GPU workers; safe to run from cron.",
        discussion: """
            Every instance is tagged with its cluster, pool, owner and expiry, so `gpu sweep` can enforce lifetimes from the tags alone, even if this machine's state is gone. When stdin is not a terminal (cron), --yes is implied; overlapping runs wait for the inventory lock or exit 4.

            Crontab examples:
              0 18 * * 5  provision gpu up homelab/gpu --ttl 4h --json >> /var/log/provision-gpu.jsonl
              0 2 * * 1   provision gpu down homelab/gpu --json >> /var/log/provision-gpu.jsonl
              */15 * * * * provision gpu sweep homelab --json >> /var/log/provision-gpu.jsonl
            """,
        subcommands: [Launch.self, Down.self, Sweep.self, Schedule.self])

    struct Launch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Launch (or find) the pool's GPU worker and wait until it is a Ready node.",
            discussion: "Example: provision gpu up homelab/gpu --ttl 4h")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions

        @Argument(help: "INVENTORY/POOL, or POOL when only one inventory has it.")
        var pool: String

        @Option(help: ArgumentHelp("Terminate after this long (tagged on the instance); default: the pool's defaultTTL.", valueName: "duration"))
        var ttl: String?

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let (inv, name) = try Loader(output: output).member(pool, pools: true)
                let spec = inv.pool(named: name)!
                var lifetime = spec.defaultTTL.value
                if let ttl {
                    guard let parsed = DurationText.parse(ttl), parsed > .zero else {
                        output.failure("--ttl \(ttl) is not a duration; write e.g. 4h or 90m", key: "flag.invalid")
                        throw Exit(status: .badInput)
                    }
                    guard parsed <= spec.maxLifetime.value else {
                        output.failure("--ttl \(ttl) exceeds pool \(name)'s maxLifetime \(DurationText.format(spec.maxLifetime.value)) (\(inv.file):\(spec.maxLifetime.location.line))", key: "flag.invalid")
                        throw Exit(status: .badInput)
                    }
                    lifetime = parsed
                }
                var session = RunSession(global: global.cronSafe, run: runOptions, command: "gpu up \(inv.name)/\(name)", playbook: "gpu-up", target: name)
                session.arguments = ["ttl": DurationText.format(lifetime)]
                try await session.perform(inventory: inv)
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Drain the pool's Nodes, cancel spot requests, terminate, delete the Nodes, verify nothing bills.",
            discussion: """
                The Nodes are deleted only once EC2 reports the instances terminated: a kubelet that still runs registers a deleted Node again. The run ends with a check that no Node, instance or open spot request of the pool is left.

                Example: provision gpu down homelab/gpu
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions

        @Argument(help: "INVENTORY/POOL, or POOL when only one inventory has it.")
        var pool: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let (inv, name) = try Loader(output: Output(json: global.json)).member(pool, pools: true)
                try await RunSession(global: global.cronSafe, run: runOptions, command: "gpu down \(inv.name)/\(name)", playbook: "gpu-down", target: name)
                    .perform(inventory: inv)
            }
        }
    }

    struct Sweep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sweep",
            abstract: "Terminate every tagged instance past its expiry or max lifetime; remove orphaned Nodes.",
            discussion: "Needs no local state: it reads the instances' tags. Example: provision gpu sweep homelab")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var runOptions: RunOptions

        @Argument(help: "Inventory name or path.")
        var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let inv = try Loader(output: Output(json: global.json)).inventory(inventory)
                try await RunSession(global: global.cronSafe, run: runOptions, command: "gpu sweep \(inv.name)", playbook: "gpu-sweep")
                    .perform(inventory: inv)
            }
        }
    }
}

extension GlobalOptions {
    /// Cron has no terminal to answer prompts: GPU commands imply --yes there.
    var cronSafe: GlobalOptions {
        var copy = self
        if isatty(STDIN_FILENO) != 1 { copy.yes = true }
        return copy
    }
}
