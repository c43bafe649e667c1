import Foundation

/// Something that happened during a run. The same events drive the TTY view, `--json` lines on stdout
/// and the trace log, so what cron sees and what a person sees cannot drift apart.
public struct Event: Sendable, Codable {
    public enum Kind: String, Sendable, Codable {
        case runStarted = "run.started"
        case runFinished = "run.finished"
        case stepStarted = "step.started"
        case stepSatisfied = "step.satisfied"   // observe said nothing to do
        case stepPending = "step.pending"       // dry run: would change
        case stepApplied = "step.applied"
        case stepRetrying = "step.retrying"
        case stepFailed = "step.failed"
        case stepBlocked = "step.blocked"       // a dependency failed
        case change = "plan.change"             // dry run: what would change, with why and what it costs
        case log
    }

    public enum Level: String, Sendable, Codable { case debug, info, warning, error }

    public var time: Date
    public var run: String
    public var kind: Kind
    public var level: Level
    public var step: String?
    public var node: String?
    public var attempt: Int?
    public var message: String?
    public var outputs: StepOutputs?
    public var durationMs: Int?
    public var change: PlannedChange?

    public init(run: String, kind: Kind, level: Level = .info, step: String? = nil, node: String? = nil, attempt: Int? = nil,
                message: String? = nil, outputs: StepOutputs? = nil, durationMs: Int? = nil, change: PlannedChange? = nil, time: Date = Date()) {
        self.time = time
        self.run = run
        self.kind = kind
        self.level = level
        self.step = step
        self.node = node
        self.attempt = attempt
        self.message = message
        self.outputs = outputs
        self.durationMs = durationMs
        self.change = change
    }

    /// The event with every registered secret masked in its text fields.
    func redacted(by redactor: Redactor) -> Event {
        var copy = self
        copy.message = message.map(redactor.redact)
        copy.outputs = outputs?.mapValues(redactor.redact)
        copy.change = change.map { change in
            var clean = change
            clean.reason = redactor.redact(change.reason)
            clean.diff = change.diff.map(redactor.redact)
            return clean
        }
        return copy
    }
}

/// Receives events; implementations must tolerate calls from many tasks at once.
public protocol EventSink: Sendable {
    func receive(_ event: Event)
    func flush()
}

extension EventSink {
    public func flush() {}
}

/// Fans each event out to every sink, redacted once, here, so no sink can forget to redact.
public struct EventBus: Sendable {
    public let redactor: Redactor
    let sinks: [any EventSink]

    public init(redactor: Redactor, sinks: [any EventSink]) {
        self.redactor = redactor
        self.sinks = sinks
    }

    public func emit(_ event: Event) {
        let clean = event.redacted(by: redactor)
        for sink in sinks { sink.receive(clean) }
    }

    public func flush() { for sink in sinks { sink.flush() } }
}

/// One thing a plan says would change: on which node, which resource, how, why, and whether it
/// costs the node a reboot. The `--json` plan lists these (schema in `provision plan --help`).
public struct PlannedChange: Sendable, Codable, Equatable {
    /// The inventory node, or nil for the cluster (Kubernetes objects, the secrets bundle).
    public var node: String?
    /// `machine`, `config`, `talos-version`, `schematic`, `etcd`, `kubernetes`, `cilium`, `foundation`, ...
    public var resource: String
    /// `create`, `start`, `update`, `reboot`, `upgrade`, `join`, `remove`, `orphan`, ...
    public var action: String
    public var reason: String
    /// True when the change needs the node rebooted (Talos' own answer for configs); nil when not a node change.
    public var reboot: Bool?
    /// A unified diff, secrets redacted, when the resource is text (a machine config).
    public var diff: String?

    public init(node: String?, resource: String, action: String, reason: String, reboot: Bool? = nil, diff: String? = nil) {
        self.node = node
        self.resource = resource
        self.action = action
        self.reason = reason
        self.reboot = reboot
        self.diff = diff
    }
}
