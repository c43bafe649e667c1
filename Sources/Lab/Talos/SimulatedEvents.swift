import Foundation
import SwiftProtobuf
import TalosKit

/// MachineService/Events as machined keeps them (talos v1.13.9 `runtime/v1alpha1/v1alpha1_events.go`,
/// `runtime/events.go`, server `Events`): one ring of the events published since boot (1000 slots,
/// at most 990 of history), each with a sortable id, the actor of the request that caused it
/// (empty for controllers), and its payload typed `talos/runtime/<proto name>`. A watcher gets
/// the backlog its tail options ask for (none by default), then every new event.
struct SimulatedEvents {
    struct Event: Sendable {
        var id: String
        var actor: String
        var data: Google_Protobuf_Any
        var time: Date
    }

    /// What a watcher asked for (`tail_events`, `tail_id`, `tail_seconds`; mutually exclusive).
    struct Tail: Sendable {
        var events: Int32 = 0
        var id = ""
        var seconds: Int32 = 0
    }

    static let history = 990
    private(set) var events: [Event] = []
    private var counter: UInt32 = 0
    private var watchers: [UUID: AsyncStream<Event>.Continuation] = [:]

    /// An xid-like id: 20 characters that sort in publication order (the lab's stand-in for xid;
    /// its exact encoding is not modelled).
    mutating func nextID() -> String {
        counter &+= 1
        return String(format: "%012llx%08x", UInt64(Date().timeIntervalSince1970 * 1000), counter)
    }

    /// The hello event's id: fresh, never stored.
    mutating func nextIDForHello() -> String { nextID() }

    mutating func publish(_ message: any SwiftProtobuf.Message, actor: String) {
        guard let data = try? Google_Protobuf_Any(message: message, typePrefix: "talos/runtime") else { return }
        let event = Event(id: nextID(), actor: actor, data: data, time: Date())
        events.append(event)
        if events.count > Self.history { events.removeFirst(events.count - Self.history) }
        for watcher in watchers.values { watcher.yield(event) }
    }

    /// The backlog for `tail`, or Talos' refusal text for conflicting options.
    func backlog(_ tail: Tail) throws -> [Event] {
        let given = [tail.events != 0, !tail.id.isEmpty, tail.seconds != 0].filter { $0 }.count
        if given > 1 {
            throw SimulatedEventsError(text: "WithTailID can't be specified at the same time with WithTailEvents or WithTailDuration")
        }
        if tail.events < 0 { return events }
        if tail.events > 0 { return Array(events.suffix(Int(tail.events))) }
        if !tail.id.isEmpty { return events.filter { $0.id > tail.id } }
        if tail.seconds > 0 {
            let since = Date().addingTimeInterval(-Double(tail.seconds))
            return events.filter { $0.time > since }
        }
        return []
    }

    mutating func watch(_ id: UUID, _ continuation: AsyncStream<Event>.Continuation) { watchers[id] = continuation }
    mutating func forget(_ id: UUID) { watchers[id] = nil }

    /// The API goes down: open streams end (a node that reboots closes them).
    mutating func endStreams() {
        for watcher in watchers.values { watcher.finish() }
        watchers = [:]
    }

    /// A new boot starts with an empty ring: machined keeps events in memory.
    mutating func forgetHistory() { events = [] }
}

struct SimulatedEventsError: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}
