import ArgumentParser
import Foundation
import Lab
import ProvisionCore

struct Lab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "The built-in lab: simulated Talos nodes, Kubernetes API, EC2 endpoint and WoL listener.",
        subcommands: [Serve.self, Reset.self, BreakEtcd.self, Load.self, PowerButton.self, HostReboot.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Keep a lab inventory's simulated nodes and APIs up in the foreground for other clients.",
            discussion: """
                Starts one simulated Talos node per inventory node, each on its own loopback address at port 50000, with Talos' TLS behaviour: maintenance mode (its self-signed maintenance certificate, no client certificate) until a config is applied, then mTLS from the cluster's OS CA. A VM's node runs while its domain in the lab's test-driver hypervisor runs (`provision machines up demo` or `provision up demo` creates and starts it) and loses its disk when the domain is deleted; a fresh lab's Mac minis are on (booted from the Talos USB stick, as you would by hand); once off, a Wake-on-LAN packet at the metal provider's listener powers one on only if its config armed the NIC and `lab.wakeFromPowerOff` lists its hardware class, else `provision lab power-button` does. The aws provider's endpoint serves EC2's Query API; its instances boot as Talos workers from their user data. The Kubernetes API answers at the cluster endpoint once a control plane is configured.

                Commands run against a lab inventory use this lab while it serves (otherwise they start one in their own process). The lab is saved in the state directory and comes back as it was left; what happened in it (every machine's stages and boot IDs, etcd's running members and quorum) is appended to lab/record.jsonl there. Stops on Ctrl-C.

                Examples:
                  provision lab serve demo
                  provision probe 127.0.0.11                    (in another terminal)
                  provision lab power-button demo mini01        (a Mac mini that was shut down)
                  provision up demo                             (builds the cluster on this lab)
                  kubectl --kubeconfig inventories/.provision/demo/kubeconfig get nodes
                  talosctl --nodes 127.0.0.11 version --insecure
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A lab inventory, e.g. demo.")
        var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Loader(output: output).labInventory(inventory, for: "served")
                let redactor = Redactor()
                let twin = InProcessLab.twinPath(inv, Loader(output: output).stateDirectory(global, inventory: inv))
                let services: LabServices
                do {
                    services = try await LabServices.start(inv, credentials: CredentialResolver(baseDirectory: inv.directory, redactor: redactor), twin: twin)
                    await services.persist(to: twin)
                } catch {
                    output.failure(redactor.redact("\(error)"), key: "lab.start")
                    throw Exit(status: .failed)
                }
                let cluster = services.cluster
                for node in cluster.nodes {
                    let note = node.spec.faults.isEmpty ? "" : "  faults: " + node.spec.faults.map(\.rawValue).sorted().joined(separator: ", ")
                    guard await node.powered else {
                        let metal = inv.node(named: node.spec.name).flatMap { inv.provider(named: $0.machine.provider.value) }?.kind.value == .metal
                        let why = metal ? "off: Wake-on-LAN if it can wake it, else `provision lab power-button`" : "off until its VM runs (machines up)"
                        output.result("\(node.spec.name)  \(node.spec.address):\(node.spec.port)  talos \(node.spec.talosVersion) (\(node.spec.platform))  \(why)\(note)")
                        continue
                    }
                    if !node.spec.faults.contains(.neverBoots) {
                        do { try await node.waitUntilListening(timeout: .seconds(30)) } catch {
                            output.failure("\(node.spec.name) could not listen on \(node.spec.address):\(node.spec.port): \(error)", key: "lab.bind")
                            await services.stop()
                            throw Exit(status: .failed)
                        }
                    }
                    output.result("\(node.spec.name)  \(node.spec.address):\(node.spec.port)  talos \(node.spec.talosVersion) (\(node.spec.platform))\(note)")
                }
                for listener in services.wakeOnLAN { output.result("wake-on-lan  udp \(listener)") }
                if let endpoint = services.ec2Endpoint { output.result("ec2  \(endpoint)") }
                output.result("kubernetes  \(inv.cluster.endpoint.value)  (once a control plane is configured and etcd bootstrapped)")
                output.note("lab \(inv.name): \(cluster.nodes.count) simulated Talos nodes (time scale \(inv.lab?.timeScale.value ?? 1)); Ctrl-C stops them")
                let labControl = LabControl(labDirectory: URL(fileURLWithPath: twin).deletingLastPathComponent().path)
                labControl.markServing()
                defer { labControl.unmarkServing() }
                let control = labControl.serve { action in
                    let answer = await services.perform(action)
                    output.note("lab request \(action.text): \(answer)")
                    return answer
                }
                let serving = Task { while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) } }
                let signals = SignalWatcher { serving.cancel() }
                await serving.value
                signals.stop()
                control.cancel()
                do { try await services.save(to: twin) } catch { output.warning("the lab could not be saved to \(twin): \(error)") }
                await services.stop()
                output.note("lab \(inv.name) stopped")
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset",
            abstract: "Forget a lab inventory's simulated machines, cluster and instances.",
            discussion: """
                Removes the lab's saved state (its hypervisor, Talos machines, etcd, Kubernetes objects and EC2 instances); the next command starts a fresh lab. The secrets bundle, journal and logs stay.

                Example:
                  provision lab reset demo
                """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A lab inventory, e.g. demo.") var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let loader = Loader(output: output)
                let inv = try loader.labInventory(inventory, for: "reset")
                let stateDirectory = loader.stateDirectory(global, inventory: inv)
                let directory = inv.labDirectory(stateDirectory: stateDirectory)
                if InProcessLab.externalLab(inv, stateDirectory: stateDirectory) != nil {
                    output.failure("the lab is being served (`provision lab serve \(inv.name)`); stop it first", key: "lab.serving")
                    throw Exit(status: .refused)
                }
                do {
                    if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
                } catch {
                    output.failure("cannot remove \(directory): \(error.localizedDescription)", key: "lab.reset")
                    throw Exit(status: .failed)
                }
                output.result("lab \(inv.name) reset: the next command starts a fresh lab")
            }
        }
    }
}
