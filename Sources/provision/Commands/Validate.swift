import ArgumentParser
import Foundation
import ProvisionCore

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check an inventory and the playbooks strictly; touch nothing.",
        discussion: """
            Reports every problem at once as FILE:LINE:COLUMN, with what to do about it: unknown keys (with a suggestion), wrong types, duplicate names/addresses/MACs, addresses outside the node network, overlapping CIDRs, an even number of control planes, the VIP used as a Talos endpoint, disk selectors that could match a USB stick, credentials written inline. The playbooks in playbooks/ are parsed and expanded over the inventory too.

            Examples:
              provision validate homelab
              provision validate inventories/homelab.yaml --json

            Exit 0 when valid (warnings allowed), 64 when not.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Inventory name (inventories/NAME.yaml) or path to a .yaml file.")
    var inventory: String

    func run() async throws {
        try await runCommand { () throws(Exit) in
            let output = Output(json: global.json)
            let loader = Loader(output: Output(json: true)) // collect, print once below
            let path: String
            do throws(InputError) { path = try loader.locator.inventoryPath(inventory) } catch {
                output.diagnostics(error.diagnostics)
                throw Exit(status: .badInput)
            }
            var diagnostics: [Diagnostic] = []
            var parsed: Inventory?
            do throws(InputError) {
                let (inv, warnings) = try InventoryParser.load(path: path)
                parsed = inv
                diagnostics += warnings
            } catch {
                diagnostics += error.diagnostics
            }
            var playbooks: [String] = []
            if let inv = parsed {
                for (name, target) in Self.playbookTargets(inv, locator: loader.locator) {
                    do throws(InputError) {
                        let file = try loader.locator.playbookPath(name, inventoryFile: inv.file)
                        let book = try PlaybookParser.load(path: file, catalog: loader.catalog)
                        _ = try PlaybookExpander(inventory: inv, target: target).expand(book)
                        playbooks.append(name)
                    } catch {
                        diagnostics += error.diagnostics
                    }
                }
            }
            let errors = diagnostics.filter { $0.severity == .error }
            if global.json {
                var doc: [String: Any] = ["ok": errors.isEmpty, "inventory": path, "diagnostics": diagnostics.map(Output.encode), "playbooks": playbooks]
                if let inv = parsed {
                    doc["dhcpReservations"] = Self.reservations(inv).map { ["node": $0.node, "mac": $0.mac ?? NSNull(), "address": $0.address] as [String: Any] }
                }
                if let inv = parsed { doc["summary"] = Self.summary(inv) }
                output.document(doc)
            } else {
                output.diagnostics(diagnostics)
                if errors.isEmpty, let inv = parsed {
                    output.result("\(path): valid · \(Self.summary(inv)) · playbooks checked: \(playbooks.joined(separator: ", "))")
                    output.result(Self.reservationNote(inv))
                }
            }
            if !errors.isEmpty { throw Exit(status: .badInput) }
        }
    }

    static func summary(_ inv: Inventory) -> String {
        let cps = inv.controlPlanes.count, workers = inv.nodes.count - cps
        return "cluster \(inv.cluster.name.value), \(inv.nodes.count) nodes (\(cps) control plane\(cps == 1 ? "" : "s"), \(workers) worker\(workers == 1 ? "" : "s")), \(inv.gpuPools.count) GPU pool\(inv.gpuPools.count == 1 ? "" : "s")"
    }

    /// The DHCP reservations that make `up` find every node at once: a node in maintenance has the
    /// address DHCP gives it until its config arrives.
    static func reservations(_ inv: Inventory) -> [(node: String, mac: String?, address: String)] {
        inv.nodes.map { ($0.name.value, $0.machine.mac?.value.description, $0.address.value.description) }
    }

    static func reservationNote(_ inv: Inventory) -> String {
        let rows = reservations(inv).map { "  \($0.node.padding(toLength: 12, withPad: " ", startingAt: 0)) \($0.mac ?? "(no machine.mac: set one to reserve it)")  ->  \($0.address)" }
        let scan = inv.cluster.maintenanceScan?.value == true
            ? "Without them `up` finds nodes by a scan of \(inv.cluster.nodeCIDR.value) (cluster.maintenanceScan)."
            : "Without them `up` waits at maintenance for a node DHCP put elsewhere (or set cluster.maintenanceScan: true)."
        return "note: reserve these addresses in your router's DHCP settings (MAC -> address); a node in maintenance takes what DHCP gives it:\n"
            + rows.joined(separator: "\n") + "\n" + scan
    }

    /// Each shipped playbook with a representative target, so target-driven playbooks expand too.
    static func playbookTargets(_ inv: Inventory, locator: ProjectLocator) -> [(String, String?)] {
        let dir = URL(fileURLWithPath: (try? locator.playbookPath("up", inventoryFile: inv.file)) ?? "").deletingLastPathComponent().path
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".yaml") }
            .map { String($0.dropLast(5)) }.sorted()
        return names.compactMap { name in
            switch name {
            case "safe-reset", "remove": return (name, inv.controlPlanes.first?.name.value)
            case "machines-down": return inv.nodes.first.map { (name, $0.name.value) }
            case let gpu where gpu.hasPrefix("gpu-"): return inv.gpuPools.isEmpty ? nil : (name, inv.gpuPools[0].name.value)
            default: return (name, nil)
            }
        }
    }
}
