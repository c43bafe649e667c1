import Foundation

/// Reads a lab's `lab/record.jsonl` (every machine stage change with its boot ID, every change of
/// etcd's running members) so tests can assert safety over time: how many control planes were
/// down at once, whether etcd ever lost quorum, how many times a node rebooted.
public struct LabRecordFile {
    public struct Entry: Decodable {
        public var t: Int64
        public var node: String?
        public var event: String
        public var stage: String?
        public var bootID: String?
        public var etcdRunning: [String]?
        public var etcdMembers: Int?
        public var quorum: Bool?
        /// For `call` events: the RPC; for `note` events, what happened.
        public var method: String?
        public var detail: String?
    }

    public let entries: [Entry]

    public init(stateDirectory: String) throws {
        try self.init(labDirectory: stateDirectory + "/lab")
    }

    /// A lab kept elsewhere than its state directory (`lab.directory`).
    public init(labDirectory: String) throws {
        let text = try String(contentsOfFile: labDirectory + "/record.jsonl", encoding: .utf8)
        entries = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }

    /// Milliseconds since 1970, for "since" arguments.
    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public func since(_ t: Int64) -> [Entry] { entries.filter { $0.t >= t } }

    /// Boots that began after `t`: a new boot ID entering `booting`.
    public func boots(of node: String, since t: Int64) -> Int {
        Set(since(t).filter { $0.node == node && $0.event == "stage" && $0.stage == "booting" }.compactMap(\.bootID)).count
    }

    /// The most control planes (of `nodes`, all running at `t`) that were not running at one instant after `t`.
    public func mostDownAtOnce(_ nodes: [String], since t: Int64) -> Int {
        var down = Set<String>(), most = 0
        for entry in since(t) where entry.event == "stage" {
            guard let node = entry.node, nodes.contains(node) else { continue }
            if entry.stage == "running" { down.remove(node) } else { down.insert(node) }
            most = max(most, down.count)
        }
        return most
    }

    /// What each of `nodes` last reported before the first etcd bootstrap (a `booting` or `running`
    /// stage, and whether it noted etcd waiting since that boot began); nil when there was no bootstrap.
    public func beforeFirstBootstrap(_ nodes: [String]) -> [String: (stage: String?, etcdWaiting: Bool)]? {
        guard let first = entries.firstIndex(where: { $0.event == "etcd-bootstrap" }) else { return nil }
        var seen: [String: (stage: String?, etcdWaiting: Bool)] = [:]
        for entry in entries[..<first] {
            guard let node = entry.node, nodes.contains(node) else { continue }
            if entry.event == "stage" { seen[node] = (entry.stage, false) }
            if entry.event == "etcd-waiting" { seen[node]?.etcdWaiting = true }
        }
        return seen
    }

    /// Whether etcd reported a loss of quorum after `t`.
    public func lostQuorum(since t: Int64) -> Bool {
        since(t).contains { $0.event == "etcd" && $0.quorum == false }
    }
}
