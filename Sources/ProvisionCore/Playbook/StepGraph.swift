import Crypto

/// `with:` parameters of one step instance, after `${…}` interpolation.
public struct StepParameters: Sendable {
    public var node: YAMLNode?

    public init(_ node: YAMLNode?) { self.node = node }

    public func string(_ key: String) -> String? { node?[key]?.scalar }
    public func bool(_ key: String) -> Bool? { string(key).map { $0 == "true" } }
    public func int(_ key: String) -> Int? { string(key).flatMap(Int.init) }
    public func duration(_ key: String) -> Duration? { string(key).flatMap(DurationText.parse) }

    public func strings(_ key: String) -> [String]? {
        guard let value = node?[key] else { return nil }
        if case let .sequence(items) = value.value { return items.map { $0.scalar ?? "" } }
        return value.scalar.map { [$0] }
    }

    public var keys: [String] {
        guard case let .mapping(pairs)? = node?.value else { return [] }
        return pairs.compactMap { $0.key.scalar }
    }
}

/// One executable unit: a step definition bound to one node (or to the cluster).
public struct StepInstance: Sendable, Identifiable {
    /// `stepID@node` for per-node steps, `stepID` for cluster steps.
    public var id: String
    public var stepID: String
    public var kind: String
    public var node: String?
    public var parameters: StepParameters
    public var dependencies: [String]
    public var timeout: Duration?
    public var retries: Int?
    /// SHA-256 over the kind, the parameters and the inventory data the step reads; the journal uses
    /// it to tell "done with these inputs" from "done with older inputs".
    public var inputsDigest: String
    public var location: SourceLocation
}

/// The expanded, acyclic step graph of one playbook over one inventory, in topological order.
public struct StepGraph: Sendable {
    public private(set) var instances: [StepInstance]
    private var index: [String: Int]

    public init(_ instances: [StepInstance]) {
        self.instances = instances
        self.index = Dictionary(uniqueKeysWithValues: instances.enumerated().map { ($1.id, $0) })
    }

    public subscript(id: String) -> StepInstance? { index[id].map { instances[$0] } }

    public var edges: [(from: String, to: String)] {
        instances.flatMap { instance in instance.dependencies.map { (from: $0, to: instance.id) } }
    }

    /// Phase = length of the longest dependency chain before the step (0 for roots): what can run together.
    public var phases: [String: Int] {
        var phase: [String: Int] = [:]
        for instance in instances {
            phase[instance.id] = (instance.dependencies.compactMap { phase[$0] }.max() ?? -1) + 1
        }
        return phase
    }

    /// The longest chain by estimated duration, and its total.
    public func criticalPath(estimate: (StepInstance) -> Duration) -> (path: [String], total: Duration) {
        var best: [String: (Duration, String?)] = [:]
        for instance in instances {
            let before = instance.dependencies.compactMap { dep in best[dep].map { ($0.0, dep) } }.max { $0.0 < $1.0 }
            best[instance.id] = ((before?.0 ?? .zero) + estimate(instance), before?.1)
        }
        guard let end = best.max(by: { $0.value.0 < $1.value.0 || ($0.value.0 == $1.value.0 && $0.key > $1.key) }) else { return ([], .zero) }
        var path = [end.key]
        var cursor = end.value.1
        while let id = cursor {
            path.append(id)
            cursor = best[id]?.1
        }
        return (path.reversed(), end.value.0)
    }

    /// The sub-graph needed to reach `stepID` (all its instances and their ancestors).
    public func ancestors(ofStep stepID: String) -> Set<String> {
        var wanted = Set(instances.filter { $0.stepID == stepID || $0.id == stepID }.map(\.id))
        for instance in instances.reversed() where wanted.contains(instance.id) {
            wanted.formUnion(instance.dependencies)
        }
        return wanted
    }

    static func digest(_ parts: [String]) -> String {
        var hasher = SHA256()
        for part in parts {
            hasher.update(data: Array(part.utf8))
            hasher.update(data: [0])
        }
        return hasher.finalize().hexString
    }
}

extension YAMLNode {
    /// A deterministic text form (keys sorted) for digests.
    public var canonicalText: String {
        switch value {
        case let .scalar(text, _): return isNull ? "~" : "\"\(text)\""
        case let .sequence(items): return "[" + items.map(\.canonicalText).joined(separator: ",") + "]"
        case let .mapping(pairs):
            return "{" + pairs.map { "\($0.key.canonicalText):\($0.value.canonicalText)" }.sorted().joined(separator: ",") + "}"
        }
    }
}
