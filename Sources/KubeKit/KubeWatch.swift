import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ProvisionCore

/// What a wait watches between its looks: one object, or the objects of a kind (in a namespace,
/// with a label selector). The look must read exactly this (`get` or `list` with the same
/// arguments), because the watch starts from the resourceVersion that read saw: a change made
/// after the look is never missed, and nothing before it wakes the wait twice.
public struct KubeWatched: Sendable, Equatable {
    public var apiVersion: String
    public var kind: String
    public var namespace: String?
    public var name: String?
    public var labelSelector: String?

    public static func object(_ apiVersion: String, _ kind: String, name: String, namespace: String? = nil) -> KubeWatched {
        KubeWatched(apiVersion: apiVersion, kind: kind, namespace: namespace, name: name, labelSelector: nil)
    }

    public static func all(_ apiVersion: String, _ kind: String, namespace: String? = nil, labelSelector: String? = nil) -> KubeWatched {
        KubeWatched(apiVersion: apiVersion, kind: kind, namespace: namespace, name: nil, labelSelector: labelSelector)
    }
}

/// What the last look at a watched thing saw, for the watch that follows it.
enum SeenVersion: Sendable, Equatable {
    /// The object or list at this resourceVersion.
    case at(String)
    /// The object did not exist: a watch from "now" sends ADDED the moment it does (or at once if
    /// it appeared since the look), so no version is needed.
    case absent
}

extension KubeClient {
    /// How long one watch waits for a change before the wait looks again anyway: a look costs one
    /// GET, and a condition that also depends on something unwatched is still seen this often.
    public static let watchSpan: Duration = .seconds(5)

    /// A wake for `waitFor`-style loops: waits until the API server reports a change to `watched`
    /// since the last look, or `watchSpan` passes. Without a usable last look (never read, or the
    /// server cannot watch it), it sleeps `pause` as a poll would.
    public func wake(_ watched: KubeWatched) -> @Sendable (Duration) async -> Void {
        { pause in
            do {
                if try await self.watch(watched, within: Self.watchSpan) { return }
            } catch {}
            try? await Task.sleep(for: pause)
        }
    }

    /// Returns true at the first change to `watched` after the last look (ADDED, MODIFIED or
    /// DELETED; bookmarks are not changes) or false when `within` passed without one. Throws when
    /// there was no last look, or the watch cannot be made or has expired (410): then poll.
    public func watch(_ watched: KubeWatched, within: Duration) async throws -> Bool {
        let resource = try await resource(watched.apiVersion, watched.kind)
        let namespace = resource.namespaced ? watched.namespace ?? (watched.name == nil ? nil : config.namespace) : nil
        guard let seen = seenVersion(Self.lookKey(resource, namespace: namespace, name: watched.name, labelSelector: watched.labelSelector)) else {
            throw KubeError(status: 0, reason: "", message: "nothing read yet to watch from", operation: "watch \(watched.kind)")
        }
        let seconds = max(1, Int(within.seconds.rounded(.up)))
        var query: [(String, String)] = [("watch", "true"), ("timeoutSeconds", "\(seconds)"), ("allowWatchBookmarks", "true")]
        if case let .at(version) = seen { query.append(("resourceVersion", version)) }
        if let name = watched.name { query.append(("fieldSelector", "metadata.name=\(name)")) }
        if let labelSelector = watched.labelSelector { query.append(("labelSelector", labelSelector)) }
        let path = resource.path(namespace: namespace)
        let response = try await http.execute(request(.GET, path, query), deadline: .now() + .seconds(Int64(seconds) + 5))
        guard response.status == .ok else {
            throw KubeError(status: Int(response.status.code), reason: "", message: "the watch was refused", operation: "watch \(path)")
        }
        var pending = Data()
        for try await chunk in response.body {
            pending.append(contentsOf: chunk.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[pending.index(after: newline)...])
                guard let event = try? JSON.parse(Data(line)), let type = event["type"]?.string else { continue }
                switch type {
                case "BOOKMARK": continue
                case "ERROR": throw KubeError(status: event["object"]?["code"]?.int ?? 500, event["object"], operation: "watch \(path)")
                default: return true
                }
            }
        }
        return false
    }

    /// The key under which a look records what it saw: the path it read and its selectors.
    static func lookKey(_ resource: APIResource, namespace: String?, name: String?, labelSelector: String?) -> String {
        resource.path(namespace: namespace, name: name) + (labelSelector.map { "?" + $0 } ?? "")
    }
}
