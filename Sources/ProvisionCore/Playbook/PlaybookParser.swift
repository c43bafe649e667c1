import Foundation

/// Reads `playbooks/*.yaml`, checking structure, step kinds, references and cycles with positions.
/// Checks that need the inventory (selectors, same-node needs) happen in `PlaybookExpander`.
public struct PlaybookParser {
    let collector = DiagnosticCollector()
    let catalog: StepCatalog

    public init(catalog: StepCatalog) { self.catalog = catalog }

    public static func load(path: String, catalog: StepCatalog) throws(InputError) -> Playbook {
        let root = try YAMLLoader().load(path: path)
        let parser = PlaybookParser(catalog: catalog)
        let playbook = parser.parse(root, file: path)
        guard let playbook, !parser.collector.hasErrors else { throw InputError(parser.collector.sorted) }
        return playbook
    }

    func parse(_ root: YAMLNode, file: String) -> Playbook? {
        guard let top = MappingReader(root, path: "", collector: collector) else { return nil }
        if let api = top.string("apiVersion", required: true, hint: "add `apiVersion: provision/v1`"), api.value != InventoryParser.apiVersion {
            collector.error("playbook.api-version", at: api.location, "unsupported apiVersion `\(api.value)`", fix: "write `apiVersion: provision/v1`")
        }
        if let kind = top.string("kind", required: true, hint: "add `kind: Playbook`"), kind.value != "Playbook" {
            collector.error("playbook.kind", at: kind.location, "`kind` is `\(kind.value)`, expected `Playbook`", fix: "write `kind: Playbook`")
        }
        let name = top.string("name")?.value ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let summary = top.string("description")?.value
        let items = top.list("steps", required: true, hint: "add a `steps:` list") ?? []
        top.finish()
        if items.isEmpty, top.node.isNull == false, collector.diagnostics.isEmpty {
            collector.error("playbook.no-steps", at: root.location, "the playbook has no steps", fix: "add at least one entry under `steps:`")
        }
        let steps = items.enumerated().compactMap { parseStep($1, index: $0) }
        checkReferences(steps)
        checkCycles(steps)
        return Playbook(name: name, file: file, summary: summary, steps: steps)
    }

    func parseStep(_ node: YAMLNode, index: Int) -> StepDefinition? {
        guard let r = MappingReader(node, path: "steps[\(index)]", collector: collector) else { return nil }
        let id = r.string("id", required: true, hint: "give the step a short unique `id`")
        let uses = r.string("uses", required: true, hint: "name a step kind, e.g. `talos.apply-config`")
        let forEach = r.string("forEach")
        let needs = (r.list("needs") ?? []).compactMap(parseNeed)
        let with = r.node("with")
        let when = r.string("when")
        let optional = r.bool("optional")?.value ?? false
        let inOrder = r.bool("inOrder")
        let timeout = r.parsed("timeout", expected: "a duration such as 10m", DurationText.parse)
        let retries = r.int("retries", range: 0...20)
        r.allow("description")
        r.finish()
        guard let id, let uses else { return nil }
        if !InventoryParser.isName(id.value) {
            collector.error("playbook.step-id", at: id.location, "step id `\(id.value)` is not a simple name", fix: "use lower-case letters, digits and dashes")
        }
        let info = catalog.info(uses.value)
        if info == nil {
            collector.error("playbook.unknown-kind", at: uses.location,
                            "unknown step kind `\(uses.value)`\(Suggestion.hint(for: uses.value, in: catalog.declared.keys.sorted()))",
                            fix: "use one of: \(catalog.declared.keys.sorted().joined(separator: ", "))")
        }
        var selector: Located<NodeSelector>?
        if let forEach {
            switch NodeSelector.parse(forEach.value) {
            case let .success(parsed): selector = Located(parsed, at: forEach.location)
            case let .failure(error): collector.error("playbook.selector", at: forEach.location, error.message, fix: error.fix)
            }
        }
        if let info {
            if info.scope == .node, forEach == nil {
                collector.error("playbook.scope", at: uses.location, "`\(uses.value)` runs per node but the step has no `forEach`",
                                fix: "add `forEach: all` or a selector such as `role=controlplane`")
            }
            if let inOrder, forEach == nil {
                collector.error("playbook.in-order", at: inOrder.location, "`inOrder` orders a step's nodes, but the step has no `forEach`",
                                fix: "remove `inOrder`, or add `forEach`")
            }
            if info.scope == .cluster, let forEach {
                collector.error("playbook.scope", at: forEach.location, "`\(uses.value)` runs once per cluster; it takes no `forEach`",
                                fix: "remove `forEach`")
            }
            if let with {
                if let params = MappingReader(with, path: "steps[\(index)].with", collector: collector) {
                    for key in params.keys where !info.parameters.contains(key.value) {
                        collector.error("playbook.unknown-parameter", at: key.location,
                                        "`\(uses.value)` takes no parameter `\(key.value)`\(Suggestion.hint(for: key.value, in: info.parameters))",
                                        fix: info.parameters.isEmpty ? "remove `with:`" : "use one of: \(info.parameters.joined(separator: ", "))")
                    }
                }
            }
        }
        var condition: Located<Condition>?
        if let when {
            switch Condition.parse(when.value) {
            case let .success(parsed): condition = Located(parsed, at: when.location)
            case let .failure(error): collector.error("playbook.condition", at: when.location, error.message, fix: error.fix)
            }
        }
        return StepDefinition(id: id, uses: uses, forEach: selector, needs: needs, with: with, when: condition,
                              optional: optional, inOrder: inOrder?.value ?? false, timeout: timeout, retries: retries, location: node.location)
    }

    func parseNeed(_ node: YAMLNode) -> StepDefinition.Need? {
        if let name = node.scalar { return .init(step: Located(name, at: node.location), scope: .node) }
        guard let r = MappingReader(node, path: "needs", collector: collector) else { return nil }
        let step = r.string("step", required: true)
        let scope = r.choice("scope", ["node", "all"])
        r.finish()
        guard let step else { return nil }
        return .init(step: step, scope: scope?.value == "all" ? .all : .node)
    }

    func checkReferences(_ steps: [StepDefinition]) {
        var seen: [String: SourceLocation] = [:]
        for step in steps {
            if let first = seen[step.id.value] {
                collector.error("playbook.duplicate-id", at: step.id.location, "step id `\(step.id.value)` is already used at line \(first.line)",
                                fix: "give every step its own id")
            } else {
                seen[step.id.value] = step.id.location
            }
        }
        let ids = steps.map(\.id.value)
        for step in steps {
            for need in step.needs where !ids.contains(need.step.value) {
                collector.error("playbook.unknown-need", at: need.step.location,
                                "step `\(step.id.value)` needs `\(need.step.value)`, which is not a step of this playbook\(Suggestion.hint(for: need.step.value, in: ids))",
                                fix: "name one of: \(ids.joined(separator: ", "))")
            }
            if step.needs.contains(where: { $0.step.value == step.id.value }) {
                collector.error("playbook.cycle", at: step.id.location, "step `\(step.id.value)` needs itself", fix: "remove it from its own `needs`")
            }
        }
    }

    /// Reports each cycle once, at the step where it was entered, with the path.
    func checkCycles(_ steps: [StepDefinition]) {
        let byID = Dictionary(steps.map { ($0.id.value, $0) }, uniquingKeysWith: { first, _ in first })
        var state: [String: Int] = [:] // 1 = on stack, 2 = done
        var stack: [String] = []
        func visit(_ id: String) {
            guard let step = byID[id] else { return }
            state[id] = 1
            stack.append(id)
            for need in step.needs where need.step.value != id {
                switch state[need.step.value] {
                case 1:
                    let cycle = stack.drop { $0 != need.step.value } + [need.step.value]
                    collector.error("playbook.cycle", at: need.step.location, "dependency cycle: \(cycle.joined(separator: " -> "))",
                                    fix: "remove one of these `needs` so the steps can be ordered")
                case nil: visit(need.step.value)
                default: break
                }
            }
            stack.removeLast()
            state[id] = 2
        }
        for step in steps where state[step.id.value] == nil { visit(step.id.value) }
    }
}
