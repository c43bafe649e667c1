import Foundation

/// Picks inventory nodes for `forEach:`. `all`, `target`, or comma-joined `key=value` / `key!=value`
/// clauses over role, name, provider, providerKind, image and label.NAME, all of which must hold.
public struct NodeSelector: Sendable, CustomStringConvertible {
    public struct Clause: Sendable {
        public var key: String
        public var value: String
        public var negated: Bool
    }

    public static let keys = ["role", "name", "provider", "providerKind", "image"]
    public var text: String
    public var clauses: [Clause]
    public var all: Bool
    /// The node named on the command line (`provision safe-reset demo/cp2`).
    public var target: Bool

    /// Parses a selector; returns the reason on failure.
    public static func parse(_ text: String) -> Result<NodeSelector, SelectorError> {
        let trimmed = text.trimmingWhitespace()
        if trimmed == "all" { return .success(NodeSelector(text: trimmed, clauses: [], all: true, target: false)) }
        if trimmed == "target" { return .success(NodeSelector(text: trimmed, clauses: [], all: false, target: true)) }
        var clauses: [Clause] = []
        for part in trimmed.split(separator: ",") {
            let piece = String(part).trimmingWhitespace()
            let negated = piece.contains("!=")
            let pair = negated ? piece.components(separatedBy: "!=") : piece.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, !pair[1].isEmpty else {
                return .failure(SelectorError(message: "`\(piece)` is not `key=value`", fix: "write e.g. `role=controlplane` or `all`"))
            }
            let key = pair[0].trimmingWhitespace(), value = pair[1].trimmingWhitespace()
            guard keys.contains(key) || key.hasPrefix("label.") else {
                return .failure(SelectorError(message: "unknown selector key `\(key)`\(Suggestion.hint(for: key, in: keys))",
                                              fix: "use one of \(keys.joined(separator: ", ")), label.NAME, `all` or `target`"))
            }
            clauses.append(Clause(key: key, value: value, negated: negated))
        }
        guard !clauses.isEmpty else { return .failure(SelectorError(message: "empty selector", fix: "write `all` or `role=worker`")) }
        return .success(NodeSelector(text: trimmed, clauses: clauses, all: false, target: false))
    }

    public func matches(_ node: NodeSpec, in inventory: Inventory, target: String?) -> Bool {
        if all { return true }
        if self.target { return node.name.value == target }
        return clauses.allSatisfy { clause in
            let actual: String?
            switch clause.key {
            case "role": actual = node.role.value.rawValue
            case "name": actual = node.name.value
            case "provider": actual = node.machine.provider.value
            case "providerKind": actual = inventory.provider(named: node.machine.provider.value)?.kind.value.rawValue
            case "image": actual = node.image.value
            default: actual = node.labels[String(clause.key.dropFirst("label.".count))]
            }
            return (actual == clause.value) != clause.negated
        }
    }

    public var description: String { text }
}

public struct SelectorError: Error, Sendable {
    public var message: String
    public var fix: String
}
