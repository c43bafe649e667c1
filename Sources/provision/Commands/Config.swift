import ArgumentParser
import Foundation
import ProvisionCore
import TalosKit

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render Talos machine configs from the secrets bundle, the inventory and its patches.",
        discussion: """
            Every document is checked against Talos' own schema for the node's version (1.12 or
            1.13) before anything is printed or written. Printed configs have every secret replaced
            by «redacted»; --output writes the real config, mode 0600, and prints only its path.

            Examples:
              provision config render homelab cp1
              provision config render homelab mini01 --output ./configs    writes ./configs/mini01.yaml
              provision config render homelab gpu                          the GPU pool's worker config
            """,
        subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One node's (or GPU pool's) machine config.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Inventory name or path.") var inventory: String
        @Argument(help: "A node or GPU pool of the inventory.") var node: String
        @Option(help: ArgumentHelp("Write the full config to DIR/NODE.yaml (mode 0600) instead of printing it redacted.", valueName: "dir"))
        var output: String?

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let session = try SecretsSession(global: global, inventory: inventory)
                let inv = session.inventory
                let names = inv.nodes.map(\.name.value) + inv.gpuPools.map(\.name.value)
                guard names.contains(node) else {
                    session.output.failure("inventory \(inv.name) has no node or GPU pool `\(node)`\(Suggestion.hint(for: node, in: names))", key: "reference.not-found")
                    throw Exit(status: .badInput)
                }
                let bundle = try await session.bundle()
                let text: String
                do throws(ConfigError) {
                    let renderer = try MachineConfigRenderer(bundle: bundle, inventory: inv)
                    let target = inv.node(named: node).map(renderer.target(node:)) ?? renderer.target(pool: inv.pool(named: node)!)
                    text = try renderer.yaml(target)
                } catch {
                    session.output.failure(session.redactor.redact(error.description), key: "config.invalid")
                    throw Exit(status: .badInput)
                }
                guard let output else {
                    session.output.result(session.redactor.redact(text).trimmingCharacters(in: .newlines))
                    return
                }
                let path = URL(fileURLWithPath: output).appendingPathComponent("\(node).yaml").path
                do {
                    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                    try PrivateFile.write(Array(text.utf8), to: path)
                } catch {
                    session.output.failure("cannot write \(path): \(error)", key: "config.write")
                    throw Exit(status: .failed)
                }
                session.output.result(path)
            }
        }
    }
}
