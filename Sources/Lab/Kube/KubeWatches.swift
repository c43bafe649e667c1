import Foundation
import KubeKit
import Synchronization

/// The lab API server's watches, as kube-apiserver's watch cache serves them: every change the
/// store makes is an event (ADDED, MODIFIED, DELETED) at the store's revision; a watch from
/// resourceVersion R gets the retained events after R that match its kind, namespace and selectors,
/// then each new one as it happens. A watch from a revision older than the retained window gets
/// one ERROR event (410 Gone, "too old resource version") and ends, and the client lists again.
/// A watch without a resourceVersion (or "0") starts with a synthetic ADDED per existing object.
final class KubeWatches: Sendable {
    struct Event: Sendable {
        var type: String
        var group: String
        var plural: String
        var namespace: String?
        var revision: Int
        var object: JSON
    }

    /// What a list or a watch selects: a kind, maybe one namespace, label and field selectors.
    struct Filter: Sendable {
        var group: String
        var plural: String
        var namespace: String?
        var labels: ObjectSelector
        var fields: ObjectSelector

        func matches(group: String, plural: String, namespace: String?, object: JSON) -> Bool {
            group == self.group && plural == self.plural && (self.namespace == nil || namespace == self.namespace)
                && labels.matches(labels: object[path: "metadata.labels"]?.object ?? [:]) && fields.matches(fields: object)
        }

        func matches(_ event: Event) -> Bool {
            matches(group: event.group, plural: event.plural, namespace: event.namespace, object: event.object)
        }
    }

    private struct Watcher {
        var filter: Filter
        var continuation: AsyncStream<Event>.Continuation
    }

    private struct State {
        var retained: [Event] = []
        /// The oldest revision a watch may start from: events after it are all retained.
        var horizon = 0
        var watchers: [UUID: Watcher] = [:]
    }

    /// Events kept for watches that start from an older revision (kube-apiserver keeps a window too).
    static let window = 1024
    private let state = Mutex(State())

    /// Called by the store, inside its actor, after each change.
    func publish(_ event: Event) {
        let targets = state.withLock { state -> [AsyncStream<Event>.Continuation] in
            state.retained.append(event)
            if state.retained.count > Self.window {
                let dropped = state.retained.count - Self.window
                state.horizon = state.retained[dropped - 1].revision
                state.retained.removeFirst(dropped)
            }
            return state.watchers.values.filter { $0.filter.matches(event) }.map(\.continuation)
        }
        for continuation in targets { continuation.yield(event) }
    }

    /// The keyspace was replaced wholesale (etcd wiped or restored): history no longer leads to
    /// the objects, so every watch ends and no older revision can be resumed from.
    func reset(at revision: Int) {
        let ended = state.withLock { state -> [AsyncStream<Event>.Continuation] in
            state.retained = []
            state.horizon = revision
            defer { state.watchers = [:] }
            return state.watchers.values.map(\.continuation)
        }
        for continuation in ended { continuation.finish() }
    }

    enum Start: Sendable {
        /// Replay the retained events after this revision.
        case after(Int)
        /// Begin with these synthetic ADDED events.
        case current([Event])
    }

    /// Subscribes `filter`; nil when `start` is older than the retained window. Called inside the
    /// store's actor so no change can fall between the replay and the subscription.
    func subscribe(_ filter: Filter, _ start: Start) -> AsyncStream<Event>? {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        let id = UUID()
        let subscribed = state.withLock { state -> Bool in
            switch start {
            case let .after(revision):
                guard revision >= state.horizon else { return false }
                for event in state.retained where event.revision > revision && filter.matches(event) { continuation.yield(event) }
            case let .current(events):
                for event in events { continuation.yield(event) }
            }
            state.watchers[id] = Watcher(filter: filter, continuation: continuation)
            return true
        }
        guard subscribed else { return nil }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) } }
        return stream
    }

    var watching: Int { state.withLock { $0.watchers.count } }
}
