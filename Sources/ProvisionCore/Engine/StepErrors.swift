/// How the executor should treat a failure. Step kinds throw `StepError` or any error conforming to
/// `ClassifiedError`; anything else counts as permanent, because retrying the unknown is how scripts
/// end up creating two VMs.
public protocol ClassifiedError: Error {
    var isTransient: Bool { get }
}

/// The common failure shapes of a step.
public enum StepError: ClassifiedError, Sendable, CustomStringConvertible {
    /// Worth retrying with backoff: timeouts of a single call, locks held, API flaps.
    case transient(String)
    /// Retrying will not help: bad input, refused by the remote, missing resource.
    case permanent(String)
    /// Refused because it would be unsafe (quorum, wrong node). Maps to exit 3.
    case refused(String)
    /// The step kind exists in playbooks but this build cannot run it.
    case unavailable(String)

    public var isTransient: Bool { if case .transient = self { return true } else { return false } }

    public var description: String {
        switch self {
        case let .transient(message), let .permanent(message), let .refused(message): return message
        case let .unavailable(kind): return "step kind \(kind) is not available in this build"
        }
    }
}

/// The step ran past its timeout; reported with the step's name, not retried.
public struct StepTimeoutError: Error, Sendable, CustomStringConvertible {
    public var step: String
    public var timeout: Duration
    public var description: String { "step \(step) timed out after \(DurationText.format(timeout))" }
}
