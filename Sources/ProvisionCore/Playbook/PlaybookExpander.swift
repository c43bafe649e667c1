/// Expands a playbook over an inventory into a `StepGraph`: one instance per selected node (or one for
/// a cluster step), `needs` turned into edges, `when` evaluated, `${…}` in parameters filled in.
public struct PlaybookExpander {
    public var inventory: Inventory
    /// The node or pool named on the command line, for `forEach: target` and `${target}`.
    public var target: String?

    public init(inventory: Inventory, target: String? = nil) {
        self.inventory = inventory
        self.target = target
    }

    public func expand(_ playbook: Playbook) throws(InputError) -> StepGraph {
        let collector = DiagnosticCollector()
        var nodesOf: [String: [String?]] = [:] // step id -> nodes (nil = cluster) it runs on
        var instances: [StepInstance] = []
        let clusterText = inventory.root["cluster"]?.canonicalText ?? ""

        // Definitions are ordered topologically first so instances come out in executable order.
        for step in topologicalOrder(playbook.steps) {
            var nodes: [NodeSpec?] = [nil]
            if let selector = step.forEach {
                if selector.value.target, target == nil {
                    collector.error("playbook.no-target", at: selector.location, "this step runs on the command's target node, but none was given",
                                    fix: "run it as `provision COMMAND INVENTORY/NODE`")
                }
                nodes = inventory.nodes.filter { selector.value.matches($0, in: inventory, target: target) }
                if nodes.isEmpty, !step.optional, !(selector.value.target && target == nil) {
                    collector.error("playbook.selector-empty", at: selector.location,
                                    "`forEach: \(selector.value)` matches no node of inventory `\(inventory.name)`",
                                    fix: "fix the selector, or add `optional: true` if the step only applies to some inventories")
                }
            }
            if let when = step.when {
                nodes = nodes.filter { when.value.evaluate(inventory: inventory, node: $0) }
            }
            nodesOf[step.id.value] = nodes.map { $0?.name.value }
            var previous: String?
            for node in nodes {
                var dependencies: [String] = []
                if step.inOrder, let previous { dependencies.append(previous) }
                previous = instanceID(step.id.value, node?.name.value)
                for need in step.needs {
                    guard let targets = nodesOf[need.step.value] else { continue }
                    if need.scope == .all || targets == [nil] || node == nil {
                        dependencies += targets.map { instanceID(need.step.value, $0) }
                    } else if targets.contains(node?.name.value) {
                        dependencies.append(instanceID(need.step.value, node?.name.value))
                    } else if !targets.isEmpty {
                        collector.error("playbook.need-missing-node", at: need.step.location,
                                        "step `\(step.id.value)` on `\(node?.name.value ?? "")` needs `\(need.step.value)` on the same node, but `\(need.step.value)` does not run there",
                                        fix: "write `{step: \(need.step.value), scope: all}` to wait for all of its nodes")
                    }
                }
                let params = interpolate(step.with, node: node, collector: collector)
                let digest = StepGraph.digest([step.uses.value, node?.name.value ?? "", params?.canonicalText ?? "",
                                               node.flatMap { inventory.rawNode(named: $0.name.value)?.canonicalText } ?? "", clusterText])
                instances.append(StepInstance(id: instanceID(step.id.value, node?.name.value), stepID: step.id.value,
                                              kind: step.uses.value, node: node?.name.value, parameters: StepParameters(params),
                                              dependencies: dependencies.uniqued(), timeout: step.timeout?.value,
                                              retries: step.retries?.value, inputsDigest: digest, location: step.location))
            }
        }
        guard !collector.hasErrors else { throw InputError(collector.sorted) }
        return StepGraph(instances)
    }

    func instanceID(_ step: String, _ node: String?) -> String { node.map { "\(step)@\($0)" } ?? step }

    func topologicalOrder(_ steps: [StepDefinition]) -> [StepDefinition] {
        var placed = Set<String>(), ordered: [StepDefinition] = []
        var remaining = steps
        while !remaining.isEmpty {
            let ready = remaining.filter { $0.needs.allSatisfy { placed.contains($0.step.value) } }
            // The parser already rejected cycles and unknown needs; anything left is appended as is.
            guard !ready.isEmpty else { return ordered + remaining }
            ordered += ready
            placed.formUnion(ready.map(\.id.value))
            remaining.removeAll { placed.contains($0.id.value) }
        }
        return ordered
    }

    /// Fills `${node.name}`, `${node.address}`, `${node.role}`, `${cluster.name}`, `${inventory.name}`,
    /// `${inventory.dir}` and `${target}` in parameter strings; unknown names are errors.
    func interpolate(_ node: YAMLNode?, node spec: NodeSpec?, collector: DiagnosticCollector) -> YAMLNode? {
        guard let node else { return nil }
        var values: [String: String] = [
            "cluster.name": inventory.cluster.name.value,
            "inventory.name": inventory.name,
            "inventory.dir": inventory.directory,
        ]
        if let target { values["target"] = target }
        if let spec {
            values["node.name"] = spec.name.value
            values["node.address"] = spec.address.value.description
            values["node.role"] = spec.role.value.rawValue
        }
        func fill(_ item: YAMLNode) -> YAMLNode {
            switch item.value {
            case let .scalar(text, plain):
                guard text.contains("${") else { return item }
                var result = "", rest = text[...]
                while let open = rest.firstRange(of: "${") {
                    result += rest[..<open.lowerBound]
                    guard let close = rest[open.upperBound...].firstIndex(of: "}") else { break }
                    let name = String(rest[open.upperBound..<close])
                    if let value = values[name] {
                        result += value
                    } else {
                        collector.error("playbook.unknown-variable", at: item.location, "`${\(name)}` is not a known variable here\(Suggestion.hint(for: name, in: values.keys.sorted()))",
                                        fix: "use one of: \(values.keys.sorted().map { "${\($0)}" }.joined(separator: ", "))")
                    }
                    rest = rest[rest.index(after: close)...]
                }
                return YAMLNode(.scalar(result + rest, plain: plain), at: item.location)
            case let .sequence(items): return YAMLNode(.sequence(items.map(fill)), at: item.location)
            case let .mapping(pairs): return YAMLNode(.mapping(pairs.map { ($0.key, fill($0.value)) }), at: item.location)
            }
        }
        return fill(node)
    }
}
