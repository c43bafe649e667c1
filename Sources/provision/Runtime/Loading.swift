import Foundation
import ProvisionCore
import Steps

/// Loads inventories and playbooks for commands, printing diagnostics and mapping bad input to exit 64.
struct Loader {
    let output: Output
    let locator = ProjectLocator()
    let catalog = StandardCatalog.make()

    func inventory(_ name: String) throws(Exit) -> Inventory {
        do {
            return try inventory(path: locator.inventoryPath(name))
        } catch let error as InputError {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        } catch let error as Exit {
            throw error
        } catch {
            throw Exit(status: .failed)
        }
    }

    func inventory(path: String) throws(Exit) -> Inventory {
        do {
            let (inventory, warnings) = try InventoryParser.load(path: path)
            if !warnings.isEmpty, !output.json { output.diagnostics(warnings) }
            return inventory
        } catch {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        }
    }

    /// `INVENTORY/NAME` or a bare `NAME`, where NAME is a node (`nodes: true`) or a GPU pool.
    func member(_ text: String, pools: Bool) throws(Exit) -> (Inventory, String) {
        do {
            let ref = try locator.reference(text) { path, name in
                guard let (inventory, _) = try? InventoryParser.load(path: path) else { return false }
                return pools ? inventory.pool(named: name) != nil : inventory.node(named: name) != nil
            }
            let inventory = try inventory(path: ref.inventoryPath)
            let name = ref.member ?? ""
            let exists = pools ? inventory.pool(named: name) != nil : inventory.node(named: name) != nil
            guard exists else {
                let names = pools ? inventory.gpuPools.map(\.name.value) : inventory.nodes.map(\.name.value)
                let what = pools ? "GPU pool" : "node"
                throw InputError("reference.not-found", at: SourceLocation(file: "command line", line: 1, column: 1),
                                 "inventory `\(inventory.name)` has no \(what) `\(name)`\(Suggestion.hint(for: name, in: names))",
                                 fix: names.isEmpty ? "add one to the inventory" : "use one of: \(names.joined(separator: ", "))")
            }
            return (inventory, name)
        } catch let error as InputError {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        } catch let error as Exit {
            throw error
        } catch {
            throw Exit(status: .failed)
        }
    }

    func graph(_ playbookName: String, inventory: Inventory, target: String?) throws(Exit) -> (Playbook, StepGraph) {
        do {
            let path = try locator.playbookPath(playbookName, inventoryFile: inventory.file)
            let playbook = try PlaybookParser.load(path: path, catalog: catalog)
            let graph = try PlaybookExpander(inventory: inventory, target: target).expand(playbook)
            return (playbook, graph)
        } catch {
            output.diagnostics(error.diagnostics)
            throw Exit(status: .badInput)
        }
    }

    func stateDirectory(_ global: GlobalOptions, inventory: Inventory) -> String {
        ProjectLocator.stateDirectory(explicit: global.stateDir, environment: ProcessInfo.processInfo.environment,
                                      inventoryFile: inventory.file, name: inventory.name)
    }
}
