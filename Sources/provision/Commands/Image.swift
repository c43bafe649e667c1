import ArgumentParser
import Foundation
import ProvisionCore
import TalosKit

struct Image: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Talos Image Factory schematic IDs and boot/installer URLs, computed offline.",
        discussion: """
            Each hardware class in the inventory names a schematic file (images/*.yaml). Its ID is the SHA-256 of the factory's canonical form, so URLs are known without a network call.

            Examples:
              provision image homelab                 per node: schematic ID, ISO, disk image, installer
              provision image homelab --json
              provision image id images/mac-mini.yaml  just the ID, for scripts
            """,
        subcommands: [Show.self, ID.self],
        defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Schematic ID and URLs for every node and GPU pool.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Inventory name or path.")
        var inventory: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let loader = Loader(output: output)
                let inv = try loader.inventory(inventory)
                var rows: [[String: String]] = []
                var ids: [String: String] = [:]
                for image in inv.images {
                    let path = Inventory.resolve(image.schematic.value, inventoryFile: inv.file)
                    ids[image.name.value] = try loader.checked { () throws(InputError) in try SchematicParser.load(path: path).id }
                }
                let members = inv.nodes.map { ($0.name.value, $0.image.value, $0.talosVersion?.value) }
                    + inv.gpuPools.map { ($0.name.value, $0.image.value, nil as String?) }
                for (name, imageName, pin) in members {
                    guard let image = inv.image(named: imageName), let id = ids[imageName] else { continue }
                    let urls = ImageURLs(schematicID: id, version: pin ?? inv.cluster.talosVersion.value, platform: image.platform.value)
                    rows.append(["name": name, "image": imageName, "version": urls.version, "platform": urls.platform, "schematic": id,
                                 "iso": urls.iso, "diskImage": urls.diskImage, "installer": urls.installer])
                }
                if global.json {
                    output.document(["inventory": inv.name, "nodes": rows])
                    return
                }
                for row in rows {
                    output.result("\(row["name"]!) (\(row["image"]!), Talos \(row["version"]!), \(row["platform"]!))")
                    output.result("  schematic  \(row["schematic"]!)")
                    output.result("  installer  \(row["installer"]!)")
                    output.result("  iso        \(row["iso"]!)")
                    output.result("  disk image \(row["diskImage"]!)")
                }
            }
        }
    }

    struct ID: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "id", abstract: "Print the schematic ID of one schematic file, nothing else.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A schematic YAML file.")
        var file: String

        func run() async throws {
            try await runCommand { () throws(Exit) in
                let output = Output(json: global.json)
                let id = try Loader(output: output).checked { () throws(InputError) in try SchematicParser.load(path: file).id }
                if global.json { output.document(["id": id, "file": file]) } else { output.result(id) }
            }
        }
    }
}
