import ArgumentParser
import Foundation
import Lab
import ProvisionCore

extension Lab {
    struct BreakEtcd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "break-etcd",
            abstract: "Destroy etcd's data on every control plane of a lab, to rehearse disaster recovery.",
            discussion: """
                Every control plane's etcd data is destroyed at once: etcd has no quorum and fails to start (`provision status` shows it), and the Kubernetes API stops answering. Nothing else changes: the machines keep running with their configs. `provision restore INV --from latest` brings the cluster back from a backup. Works on a served lab (the serving process takes the request) and on a lab kept in the state directory.

                Example:
                  provision backup demo
                  provision lab break-etcd demo
                  provision restore demo --from latest --yes
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A lab inventory, e.g. demo.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in try await Lab.request(.breakEtcd, inventory: inventory, global: global, purpose: "broken") }
        }
    }

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load",
            abstract: "Fill a lab's etcd with ConfigMaps, to rehearse backups and lists of a big cluster.",
            discussion: """
                Adds COUNT ConfigMaps named load-000001 ... in namespace lab-load, each holding SIZE bytes of data, straight into the lab's etcd keyspace (as if written through the API, in one go: 10,000 objects take a second rather than 10,000 kubectl calls). ConfigMaps already there are kept. The cluster must be up. Works on a served lab and on a lab kept in the state directory.

                Example:
                  provision lab load demo --count 10000 --size 1KiB
                  provision backup demo          (an etcd snapshot of some 14 MB)
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A lab inventory, e.g. demo.") var inventory: String
        @Option(help: "How many ConfigMaps.") var count: Int = 10000
        @Option(help: ArgumentHelp("Bytes of data in each (e.g. 100, 1KiB, 10KiB).", valueName: "size")) var size: String = "1KiB"

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                guard count >= 1, count <= 1_000_000 else {
                    output.failure("--count \(count): give between 1 and 1000000", key: "flag.invalid")
                    throw Exit(status: .badInput)
                }
                guard let bytes = Int64(size) ?? SizeText.parse(size), bytes >= 0, bytes <= 1 << 20 else {
                    output.failure("--size \(size) is not a size of at most 1MiB (Kubernetes' object limit); write e.g. 100, 1KiB or 10KiB", key: "flag.invalid")
                    throw Exit(status: .badInput)
                }
                try await Lab.request(.load(count: count, bytes: Int(bytes)), inventory: inventory, global: global, purpose: "loaded")
            }
        }
    }

    struct PowerButton: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "power-button",
            abstract: "Press a lab machine's power button: what a Mac mini needs after a power cut, or a shutdown Wake-on-LAN cannot undo.",
            discussion: """
                The lab's Mac minis power on from a magic packet only when their applied config armed Wake-on-LAN on the NIC's kernel link (`machine.link`) and their hardware class is listed in `lab.wakeFromPowerOff` (none by default: a Mac mini under Linux is not known to wake from power-off). Otherwise `provision machines up` fails as it would at home, naming the node, and this is the button you would press. Works on a served lab and on a lab kept in the state directory.

                Example:
                  provision lab power-button demo mini01
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A lab inventory, e.g. demo.") var inventory: String
        @Argument(help: "The machine's node name, e.g. mini01.") var node: String

        func run() async throws {
            try await runCommand { () throws(Exit) in try await Lab.request(.powerButton(node: node), inventory: inventory, global: global, purpose: "powered on") }
        }
    }

    struct HostReboot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "host-reboot",
            abstract: "Reboot a lab libvirt host as an Unraid server reboots: every VM stops, and only those marked autostart start again.",
            discussion: """
                Unraid stops every VM with its array and brings back only the VMs libvirt marks autostart; provision marks its VMs so (the libvirt provider's `autostart`, on by default), and `provision machines list` shows the flag. Their Talos nodes boot again with their configs and rejoin without provision. Works on a served lab and on a lab kept in the state directory.

                Example:
                  provision lab host-reboot demo lab-libvirt
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A lab inventory, e.g. demo.") var inventory: String
        @Argument(help: "Its libvirt provider, e.g. lab-libvirt.") var provider: String

        func run() async throws {
            try await runCommand { () throws(Exit) in try await Lab.request(.hostReboot(provider: provider), inventory: inventory, global: global, purpose: "rebooted") }
        }
    }

    /// Carries out a lab request: by the serving process when the lab is served, else on the lab
    /// kept in the state directory, started here for it and saved again.
    static func request(_ action: LabControl.Action, inventory: String, global: GlobalOptions, purpose: String) async throws(Exit) {
        let output = Output(json: global.json)
        let loader = Loader(output: output)
        let inv = try loader.labInventory(inventory, for: purpose)
        let stateDirectory = loader.stateDirectory(global, inventory: inv)
        let answer: String
        if InProcessLab.externalLab(inv, stateDirectory: stateDirectory) != nil {
            do {
                guard let served = try await LabControl(labDirectory: inv.labDirectory(stateDirectory: stateDirectory)).request(action, timeout: .seconds(60)) else {
                    output.failure("the lab serving \(inv.name) did not take the request (is it this state directory's lab?)", key: "lab.request")
                    throw Exit(status: .failed)
                }
                answer = served
            } catch let exit as Exit { throw exit } catch {
                output.failure("cannot send the request to the served lab: \(error)", key: "lab.request")
                throw Exit(status: .failed)
            }
        } else {
            guard let lab = try await InProcessLab.start(inv, stateDirectory: stateDirectory,
                                                         credentials: CredentialResolver(baseDirectory: inv.directory, redactor: Redactor()), output: output) else {
                output.failure("the lab \(inv.name) could not be reached", key: "lab.start")
                throw Exit(status: .failed)
            }
            answer = await lab.services.perform(action)
            await lab.finish()
        }
        output.result(answer)
    }
}
