import Foundation

/// A `when:` condition: clauses joined by ` and `, each `path == value`, `path != value`, `path`
/// (set and not false) or `not path`. Paths read the inventory (`cni.kind`, `foundation.kind`) or the
/// node a step runs on (`node.role`, `node.providerKind`). Deliberately tiny: playbooks stay readable.
public struct Condition: Sendable, CustomStringConvertible {
    public enum Clause: Sendable {
        case equals(path: [String], value: String, negated: Bool)
        case truthy(path: [String], negated: Bool)
    }

    public var text: String
    public var clauses: [Clause]

    public static let roots = ["cluster", "cni", "secrets", "foundation", "providers", "images", "gpuPools", "lab", "node"]

    public static func parse(_ text: String) -> Result<Condition, SelectorError> {
        var clauses: [Clause] = []
        for raw in text.components(separatedBy: " and ") {
            let part = raw.trimmingWhitespace()
            let clause: Clause
            if part.contains("==") || part.contains("!=") {
                let negated = part.contains("!=")
                let sides = part.components(separatedBy: negated ? "!=" : "==").map { $0.trimmingWhitespace() }
                guard sides.count == 2, !sides[0].isEmpty, !sides[1].isEmpty else {
                    return .failure(SelectorError(message: "`\(part)` is not `path == value`", fix: "write e.g. `cni.kind == cilium`"))
                }
                var value = sides[1]
                if value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" {
                    value = String(value.dropFirst().dropLast())
                }
                clause = .equals(path: sides[0].split(separator: ".").map(String.init), value: value, negated: negated)
            } else if part.hasPrefix("not ") {
                clause = .truthy(path: part.dropFirst(4).trimmingWhitespace().split(separator: ".").map(String.init), negated: true)
            } else {
                clause = .truthy(path: part.split(separator: ".").map(String.init), negated: false)
            }
            let path: [String]
            switch clause {
            case let .equals(p, _, _), let .truthy(p, _): path = p
            }
            guard let root = path.first, roots.contains(root), path.allSatisfy({ !$0.isEmpty }) else {
                let first = path.first ?? ""
                return .failure(SelectorError(message: "`\(part)` reads `\(first)`, which is not part of an inventory\(Suggestion.hint(for: first, in: roots))",
                                              fix: "start the path with one of \(roots.joined(separator: ", "))"))
            }
            clauses.append(clause)
        }
        return .success(Condition(text: text, clauses: clauses))
    }

    /// Evaluates against the inventory's YAML and, for `node.*`, the node's YAML plus derived fields.
    public func evaluate(inventory: Inventory, node: NodeSpec?) -> Bool {
        clauses.allSatisfy { clause in
            switch clause {
            case let .equals(path, value, negated):
                return (lookup(path, inventory: inventory, node: node) == value) != negated
            case let .truthy(path, negated):
                let found = lookup(path, inventory: inventory, node: node)
                let truthy = found != nil && found != "false" && found != ""
                return truthy != negated
            }
        }
    }

    private func lookup(_ path: [String], inventory: Inventory, node: NodeSpec?) -> String? {
        if path.first == "node" {
            guard let node else { return nil }
            switch path.dropFirst().first {
            case "providerKind": return inventory.provider(named: node.machine.provider.value)?.kind.value.rawValue
            case "role": return node.role.value.rawValue
            case "name": return node.name.value
            default:
                let raw = inventory.rawNode(named: node.name.value)
                return raw.flatMap { walk($0, Array(path.dropFirst())) }
            }
        }
        // Defaults the parser fills in are visible to conditions too.
        if path == ["cni", "kind"] { return inventory.cni.kind.value.rawValue }
        if path == ["foundation", "kind"] { return inventory.foundation.kind.value.rawValue }
        return walk(inventory.root, path)
    }

    private func walk(_ start: YAMLNode, _ path: [String]) -> String? {
        var current = start
        for key in path {
            guard let next = current[key] else { return nil }
            current = next
        }
        switch current.value {
        case .scalar: return current.scalar
        case .mapping, .sequence: return "true"
        }
    }

    public var description: String { text }
}

extension Inventory {
    /// The node's entry in the raw document, for `when: node.*` lookups.
    func rawNode(named name: String) -> YAMLNode? {
        guard case let .sequence(items)? = root["nodes"]?.value else { return nil }
        return items.first { $0["name"]?.scalar == name }
    }
}
