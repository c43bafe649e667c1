import ArgumentParser
import ProvisionCore

struct Lab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The built-in lab: simulated Talos nodes, Kubernetes API, EC2 endpoint and WoL listener.",
        subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep a lab inventory's simulated nodes and APIs up in the foreground for other clients.",
            discussion: "Example: provision lab serve demo   (then talosctl or kubectl against 127.0.0.x)")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A lab inventory, e.g. demo.")
        var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let inv = try Loader(output: output).inventory(inventory)
                guard inv.lab != nil else {
                    output.failure("inventory \(inv.name) has no `lab:` block; only lab inventories (like demo) can be served", key: "lab.not-a-lab")
                    throw Exit(status: .badInput)
                }
                output.failure("the lab's simulated nodes are not available in this build (the Talos simulator is not built yet); nothing was started", key: "lab.unavailable")
                throw Exit(status: .failed)
            }
        }
    }
}
