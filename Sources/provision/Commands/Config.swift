import ArgumentParser
import Foundation
import ProvisionCore
import TalosKit

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Render Talos machine configs from the secrets bundle, the inventory and its patches.",
        discussion: """
            Every document is checked against Talos' own schema for the node's version (1.12 or 1.13) before anything is printed or written. Printed configs have every secret replaced by «redacted»; --output writes the real config, mode 0600, and prints only its path.

            Examples:
              provision config render homelab cp1
              provision config render homelab mini01 --output ./configs    writes ./configs/mini01.yaml
              provision config render homelab gpu                          the GPU pool's worker config
              provision config render homelab --all --output ./configs      every node and pool
            """,
        subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "render", abstract: "One node's (or GPU pool's) machine config.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Argument(help: "A node or GPU pool of the inventory.") var node: String?
        @Flag(help: "Render every node and GPU pool (needs --output).") var all = false
        @Option(help: ArgumentHelp("Write the full config to DIR/NODE.yaml (mode 0600) instead of printing it redacted.", valueName: "dir"))
        var output: String?

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let session = try SecretsSession(global: global, inventory: inventory)
                let inv = session.inventory
                let names = inv.nodes.map(\.name.value) + inv.gpuPools.map(\.name.value)
                let chosen: [String]
                switch (node, all) {
                case let (name?, false):
                    guard names.contains(name) else {
                        session.output.failure("inventory \(inv.name) has no node or GPU pool `\(name)`\(Suggestion.hint(for: name, in: names))", key: "reference.not-found")
                        throw Exit(status: .badInput)
                    }
                    chosen = [name]
                case (nil, true) where output != nil:
                    chosen = names
                default:
                    session.output.failure("name one node or GPU pool, or pass --all with --output DIR", key: "flag.invalid")
                    throw Exit(status: .badInput)
                }
                let bundle = try await session.bundle()
                var rendered: [(String, String)] = []
                do throws(ConfigError) {
                    var renderer = try MachineConfigRenderer(bundle: bundle, inventory: inv)
                    // At the Kubernetes the cluster runs (what `up` would send), once it has one.
                    renderer.kubernetes = KubernetesVersions.load(stateDirectory: session.store.stateDirectory)
                    for name in chosen {
                        let target = inv.node(named: name).map(renderer.target(node:)) ?? renderer.target(pool: inv.pool(named: name)!)
                        rendered.append((name, try renderer.yaml(target)))
                    }
                } catch {
                    session.output.failure(session.redactor.redact(error.description), key: "config.invalid")
                    throw Exit(status: .badInput)
                }
                guard let output else {
                    session.output.result(session.redactor.redact(rendered[0].1).trimmingCharacters(in: .newlines))
                    return
                }
                // Everything rendered and validated before the first file is written.
                do {
                    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    for (name, text) in rendered {
                        let path = URL(fileURLWithPath: output).appendingPathComponent("\(name).yaml").path
                        try PrivateFile.write(Array(text.utf8), to: path)
                        session.output.result(path)
                    }
                } catch {
                    session.output.failure("cannot write into \(output): \(error)", key: "config.write")
                    throw Exit(status: .failed)
                }
            }
        }
    }
}
