import ArgumentParser
import Foundation
import ProvisionCore
import Steps
import TalosKit

struct Upgrade: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Rolling Talos and Kubernetes upgrades to the inventory's versions: etcd-gated, verified, resumable.",
        discussion: """
            Reads what every node runs (Talos version and the schematic of its image) and brings it to what the inventory says: the cluster's talosVersion, a node's own pin, the schematic of its image. The path goes first to the latest patch of the node's own minor, then through the latest patch of every minor in between (as Talos' upgrade guide says); a release this build does not know, a downgrade (unless --allow-downgrade), or a Talos that does not run the cluster's Kubernetes version is refused before anything is touched (exit 64). A schematic change alone is an upgrade too.

            Control planes go first, strictly one at a time, each behind the etcd gate (every member started and healthy, no alarm, never from 2 members) and after it etcd healthy again; then the workers, --max-parallel at a time. On Talos 1.13 and later a node pulls the installer (ImageService/Pull) and installs it into its other boot slot (LifecycleService/Upgrade, into the same containerd instance), then is drained and rebooted; a 1.12 node takes the legacy MachineService/Upgrade. Each node is verified: a new boot, running and ready, the target version and schematic. One that comes back on its old version fell back (the new image did not boot): the rollout stops there (exit 1) and nothing is sent to it again until you pass --retry with --node.

            Kubernetes goes after Talos, to the inventory's kubernetesVersion, one minor at a time (a skip is refused naming the minor in between, exit 64), and only inside every node's Talos window, with kubelets at most three minors behind and no API version the target removes still in use. kube-apiserver moves on each control plane in turn, then kube-controller-manager, kube-scheduler and kube-proxy, then the kubelets (control planes first): each one NO_REBOOT config change re-rendered from the inventory, waited for until that component runs the new version and is Ready. The cluster's recorded Kubernetes version (state/kubernetes-versions.json) then moves, so GPU workers launched later join at it. --talos-only and --kubernetes-only take one part; --node upgrades one node's Talos only.

            Every hop is recorded in the journal (the boot ID before, the image) before it is sent, so a run killed anywhere resumes without upgrading a node twice. --dry-run prints the ordered rollout and exits 2 when there is one. `provision up` never upgrades; `provision plan` lists what `upgrade` would do.

            Examples:
              provision upgrade homelab --dry-run
              provision upgrade homelab --yes
              provision upgrade homelab --node mini01
              provision upgrade homelab --kubernetes-only --yes
              provision upgrade homelab --node cp2 --retry     after a fallback was looked into

            Exit 0 done or nothing to do, 1 failed (a fallback included), 2 a rollout is pending (--dry-run), 3 refused, 4 locked, 64 bad input, 130 interrupted.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var runOptions: RunOptions

    @Argument(help: "Inventory name or path.")
    var inventory: String

    @Option(help: ArgumentHelp("Upgrade only this node.", valueName: "node"))
    var node: String?

    @Flag(name: .customLong("allow-downgrade"), help: "Allow a target older than what a node runs.")
    var allowDowngrade = false

    @Flag(help: "With --node: send the upgrade again to a node whose last upgrade fell back.")
    var retry = false

    @Flag(name: .customLong("talos-only"), help: "Upgrade Talos only; leave Kubernetes where it is.")
    var talosOnly = false

    @Flag(name: .customLong("kubernetes-only"), help: "Upgrade Kubernetes only; leave every node's Talos where it is.")
    var kubernetesOnly = false

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: output)
            let inv = try loader.inventory(inventory)
            if let node, inv.node(named: node) == nil {
                output.failure("inventory `\(inv.name)` has no node `\(node)`; nodes: \(inv.nodes.map(\.name.value).joined(separator: ", "))", key: "reference.not-found")
                throw Exit(status: .badInput)
            }
            if talosOnly, kubernetesOnly {
                output.failure("--talos-only and --kubernetes-only exclude each other; pass neither to upgrade both (Talos first)", key: "flag.invalid")
                throw Exit(status: .badInput)
            }
            let scope: UpgradeRollout.Scope = talosOnly ? .talos : kubernetesOnly ? .kubernetes : .both
            if retry, node == nil {
                output.failure("--retry needs --node: a fallback is retried one node at a time, deliberately", key: "flag.invalid")
                throw Exit(status: .badInput)
            }
            let rollout = try await UpgradeRollout.read(inv, stateDirectory: loader.stateDirectory(global, inventory: inv), output: output,
                                                        only: node, allowDowngrade: allowDowngrade, maxParallel: runOptions.maxParallel, scope: scope)
            rollout.print(output)
            if global.dryRun {
                if rollout.isEmpty { return }
                throw Exit(status: .changes)
            }
            if rollout.isEmpty, !retry {
                output.note("nothing to do: every node runs the inventory's Talos, schematic and Kubernetes")
                return
            }
            if !global.yes, isatty(STDIN_FILENO) != 1 {
                output.failure("upgrade asks for a typed confirmation, but stdin is not a terminal; pass --yes to confirm non-interactively", key: "confirm.needed")
                throw Exit(status: .refused)
            }
            var session = RunSession(global: global, run: runOptions, command: "upgrade \(inv.name)", playbook: "upgrade")
            session.arguments = ["yes": global.yes ? "true" : "false", "retry": retry ? "true" : "false",
                                 "allowDowngrade": allowDowngrade ? "true" : "false", "scope": scope.rawValue]
            if let node { session.arguments["node"] = node }
            try await session.perform(inventory: inv)
        }
    }
}
