import Foundation
import ProvisionCore
import Steps

/// Loads inventories and playbooks for commands, printing diagnostics and mapping bad input to exit 64.
struct Loader {
    let output: Output
    let locator = ProjectLocator()
    let catalog = StandardCatalog.make()

    /// Runs `body`; bad input is printed as diagnostics and becomes exit 64.
    func checked<T>(_ body: () throws(InputError) -> T) throws(Exit) -> T {
        do {
            return try body()
        } catch {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        }
    }

    func inventory(_ name: String) throws(Exit) -> Inventory {
        try inventory(path: checked { () throws(InputError) in try locator.inventoryPath(name) })
    }

    func inventory(path: String) throws(Exit) -> Inventory {
        let (inventory, warnings) = try checked { () throws(InputError) in try InventoryParser.load(path: path) }
        if !warnings.isEmpty, !output.json { output.diagnostics(warnings) }
        // A lab inventory runs against simulators on loopback: nothing it does may reach a real network.
        if inventory.lab != nil { NetworkPolicy.restrict(to: .loopback) }
        return inventory
    }

    /// An inventory that must be a lab (`lab:` block), for the `lab` commands.
    func labInventory(_ name: String, for purpose: String) throws(Exit) -> Inventory {
        let inv = try inventory(name)
        guard inv.lab != nil else {
            output.failure("inventory \(inv.name) has no `lab:` block; only lab inventories (like demo) can be \(purpose)", key: "lab.not-a-lab")
            throw Exit(status: .badInput)
        }
        return inv
    }

    /// `INVENTORY/NAME` or a bare `NAME`, where NAME is a node, or a GPU pool when `pools` is set.
    func member(_ text: String, pools: Bool) throws(Exit) -> (Inventory, String) {
        func names(_ inventory: Inventory) -> [String] {
            pools ? inventory.gpuPools.map(\.name.value) : inventory.nodes.map(\.name.value)
        }
        let ref = try checked { () throws(InputError) in
            try locator.reference(text) { path, name in
                guard let (inventory, _) = try? InventoryParser.load(path: path) else { return false }
                return names(inventory).contains(name)
            }
        }
        let inventory = try inventory(path: ref.inventoryPath)
        let name = ref.member ?? ""
        let known = names(inventory)
        guard known.contains(name) else {
            return try checked { () throws(InputError) in
                throw InputError("reference.not-found", at: SourceLocation(file: "command line", line: 1, column: 1),
                                 "inventory `\(inventory.name)` has no \(pools ? "GPU pool" : "node") `\(name)`\(Suggestion.hint(for: name, in: known))",
                                 fix: known.isEmpty ? "add one to the inventory" : "use one of: \(known.joined(separator: ", "))")
            }
        }
        return (inventory, name)
    }

    /// `INVENTORY/NAME` (or `NAME` when one inventory lists it), without requiring the inventory to
    /// list it: `remove` also takes orphans.
    func reference(_ text: String) throws(Exit) -> (Inventory, String) {
        let ref = try checked { () throws(InputError) in
            try locator.reference(text) { path, name in
                guard let (inventory, _) = try? InventoryParser.load(path: path) else { return false }
                return inventory.node(named: name) != nil
            }
        }
        return (try inventory(path: ref.inventoryPath), ref.member ?? "")
    }

    func graph(_ playbookName: String, inventory: Inventory, target: String?) throws(Exit) -> (Playbook, StepGraph) {
        try checked { () throws(InputError) in
            let path = try locator.playbookPath(playbookName, inventoryFile: inventory.file)
            let playbook = try PlaybookParser.load(path: path, catalog: catalog)
            return (playbook, try PlaybookExpander(inventory: inventory, target: target).expand(playbook))
        }
    }

    func stateDirectory(_ global: GlobalOptions, inventory: Inventory) -> String {
        ProjectLocator.stateDirectory(explicit: global.stateDir, environment: ProcessInfo.processInfo.environment,
                                      inventoryFile: inventory.file, name: inventory.name)
    }
}
