import ProvisionCore
import TalosKit

/// Before a run sends any machine config, every config it could send (the nodes of its
/// `talos.apply-config` steps, the pools of its `gpu.launch` steps) is rendered and checked against
/// Talos' own schema, offline. A patch that breaks a config is refused here with Talos' schema
/// error and where the patch is, and nothing is sent. Secrets play no part in the schema, so a
/// keyless placeholder bundle stands in and nothing is decrypted.
enum ConfigPreflight {
    static func problems(_ inventory: Inventory, graph: StepGraph, selected: Set<String>) -> [String] {
        let instances = graph.instances.filter { selected.contains($0.id) }
        let nodes = Set(instances.filter { $0.kind == "talos.apply-config" }.compactMap(\.node)).sorted()
        let launchesPools = instances.contains { $0.kind == "gpu.launch" }
        guard !nodes.isEmpty || launchesPools else { return [] }
        let renderer: MachineConfigRenderer
        do { renderer = try MachineConfigRenderer(bundle: .placeholder, inventory: inventory) } catch { return ["\(error)"] }
        var problems: [String] = []
        for name in nodes {
            guard let node = inventory.node(named: name) else { continue }
            do { _ = try renderer.render(renderer.target(node: node)) } catch {
                let place = node.patches.first.map { "\($0.location): " } ?? ""
                problems.append(place + "\(error)")
            }
        }
        if launchesPools {
            for pool in inventory.gpuPools {
                do { _ = try renderer.render(renderer.target(pool: pool)) } catch { problems.append("\(error)") }
            }
        }
        return problems
    }
}
