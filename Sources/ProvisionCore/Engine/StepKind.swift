/// What a playbook's `uses:` names: one kind of work with a read-only `observe` and a mutating `apply`.
///
/// The executor always observes first. A step whose observed state already matches is skipped, which
/// is what makes a re-run of a converged inventory free of mutating calls, and what makes resume after
/// `kill -9` safe: the journal is a hint, `observe` is the truth.
public protocol StepKind: Sendable {
    var info: StepKindInfo { get }

    /// Named resources this instance occupies while it runs (e.g. `proxmox-storage:pve/local-lvm`);
    /// the executor runs at most `limit(class)` instances per resource at a time.
    func resources(for step: StepInstance, context: StepContext) -> [ResourceKey]

    /// Reads live state without side effects.
    func observe(_ step: StepInstance, context: StepContext) async throws -> Observation

    /// Makes the change. Must be safe to call again after a crash at any point (idempotent).
    func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs
}

extension StepKind {
    public func resources(for step: StepInstance, context: StepContext) -> [ResourceKey] { [] }
}

/// Static facts about a step kind: shown by `plan`, used for the critical path and validation.
public struct StepKindInfo: Sendable {
    public enum Scope: String, Sendable { case node, cluster, any }

    public var name: String
    public var summary: String
    /// Typical duration, used only to estimate the critical path in `plan`.
    public var estimate: Duration
    public var scope: Scope
    public var mutates: Bool
    public var defaultTimeout: Duration
    /// Parameter names accepted under `with:`; anything else is a validation error.
    public var parameters: [String]
    /// Done afresh on every run (a snapshot, a backup): an earlier success is no reason to warn.
    public var everyRun: Bool

    public init(name: String, summary: String, estimate: Duration, scope: Scope = .any, mutates: Bool = true,
                defaultTimeout: Duration = .seconds(600), parameters: [String] = [], everyRun: Bool = false) {
        self.everyRun = everyRun
        self.name = name
        self.summary = summary
        self.estimate = estimate
        self.scope = scope
        self.mutates = mutates
        self.defaultTimeout = defaultTimeout
        self.parameters = parameters
    }
}

/// A resource class and instance, e.g. class `proxmox-storage`, name `pve/local-lvm`.
public struct ResourceKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: String
    public var name: String

    public init(_ kind: String, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public var description: String { "\(kind):\(name)" }
    public static func < (a: ResourceKey, b: ResourceKey) -> Bool { a.description < b.description }
}

/// What `observe` found.
public enum Observation: Sendable, Equatable {
    /// Live state already matches; `apply` is not needed. Outputs are passed to dependents.
    case satisfied(StepOutputs)
    /// A change is needed; the reason is shown in plans and dry runs.
    case pending(String)
}

/// Small named results a step hands to later steps and the journal (ids, addresses, boot IDs).
/// Never secrets: the journal is not encrypted.
public typealias StepOutputs = [String: String]

/// The registry of step kinds this build knows. `declared` lists every kind a playbook may name
/// (so plans work and typos are caught); `implemented` is what this build can actually run.
public struct StepCatalog: Sendable {
    public private(set) var declared: [String: StepKindInfo] = [:]
    public private(set) var implemented: [String: any StepKind] = [:]

    public init() {}

    public mutating func declare(_ info: StepKindInfo) { declared[info.name] = info }

    public mutating func register(_ kind: any StepKind) {
        declared[kind.info.name] = kind.info
        implemented[kind.info.name] = kind
    }

    public func info(_ name: String) -> StepKindInfo? { declared[name] }
    public func kind(_ name: String) -> (any StepKind)? { implemented[name] }
}
