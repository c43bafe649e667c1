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

    public init(run: String, kind: Kind, level: Level = .info, step: String? = nil, node: String? = nil, attempt: Int? = nil,
                message: String? = nil, outputs: StepOutputs? = nil, durationMs: Int? = nil, time: Date = Date()) {
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
    }

    /// The event with every registered secret masked in its text fields.
    func redacted(by redactor: Redactor) -> Event {
        var copy = self
        copy.message = message.map(redactor.redact)
        copy.outputs = outputs?.mapValues(redactor.redact)
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
