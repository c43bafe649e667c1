/// How often a wait looks again: soon at first (100 ms, or `cap` if that is shorter), then half as
/// long again each time, up to `cap`. A condition that turns true shortly after a wait starts is
/// seen within a tenth of a second; one that takes minutes costs a look per `cap`, not ten a second.
public struct PollSchedule: Sendable {
    public let cap: Duration
    private var current: Duration

    public init(cap: Duration, start: Duration = .milliseconds(100)) {
        self.cap = max(cap, .milliseconds(1))
        current = min(start, self.cap)
    }

    /// The pause before the next look.
    public mutating func next() -> Duration {
        let now = current
        current = min(cap, current * 1.5)
        return now
    }
}
