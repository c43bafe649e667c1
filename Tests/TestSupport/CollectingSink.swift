import ProvisionCore
import Synchronization

/// Collects a run's events for assertions.
public final class CollectingSink: EventSink {
    let events = Mutex<[Event]>([])

    public init() {}

    public func receive(_ event: Event) { events.withLock { $0.append(event) } }
    public var all: [Event] { events.withLock { $0 } }
}
