import ArgumentParser
import ProvisionCore

/// Flags every command accepts.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Machine-readable output: JSON-lines events for runs, one JSON document otherwise.")
    var json = false

    @Flag(help: "Answer confirmations with yes (cron). GPU commands imply it when stdin is not a terminal.")
    var yes = false

    @Flag(name: .customLong("dry-run"), help: "Observe only: report what would change, change nothing.")
    var dryRun = false

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Where the journal, lock, secrets and logs live.",
        discussion: "Default: $PROVISION_STATE_DIR, else .provision/INVENTORY beside the inventory.",
        valueName: "dir"))
    var stateDir: String?

    @Flag(name: .shortAndLong, help: "Show every step as it starts, and debug messages.")
    var verbose = false
}

/// Flags of commands that run a playbook.
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("lock-timeout"), help: ArgumentHelp(
        "How long to wait for another run on the same inventory before exiting 4.", valueName: "duration"))
    var lockTimeout: String = "0s"

    @Option(help: ArgumentHelp("Run this step and everything it needs, nothing after it.", valueName: "step"))
    var until: String?

    @Option(help: ArgumentHelp("Run only this step (or STEP@NODE); its dependencies are checked, not run.", valueName: "step"))
    var only: String?

    @Option(help: ArgumentHelp("How many steps may run at once. A step waiting for a node holds its place too, so this is well above a homelab's node count; machine creates (each provider's maxParallel) and reboots have their own limits.", valueName: "n"))
    var concurrency: Int = ExecutorOptions().maxConcurrency

    @Option(name: .customLong("max-parallel"), help: ArgumentHelp(
        "How many workers may be down at once for a reboot or upgrade (control planes: always one).", valueName: "n"))
    var maxParallel: Int = 1

    @Flag(name: .customLong("detailed-exitcode"), help: "Exit 2 when the run changed something (0 when nothing changed).")
    var detailedExitcode = false

    @Option(name: .customLong("metrics-file"), help: ArgumentHelp(
        "Write the run's figures here in Prometheus' text format, atomically (for node_exporter's textfile collector).", valueName: "path"))
    var metricsFile: String?
}
