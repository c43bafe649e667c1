import Crypto
import Foundation
import GRPCCore

/// etcd as the simulated control planes share it: bootstrapped once on one node, joined by the
/// others, left on graceful reset. A second bootstrap on a node that has not joined makes a second,
/// independent cluster, exactly the split brain real Talos allows, so tests can see our steps avoid it.
public actor SimulatedEtcd {
    public struct Member: Sendable, Equatable {
        public var id: UInt64
        public var node: String
        public var hostname: String
        public var address: String
    }

    struct Cluster {
        var members: [Member]
        var leader: UInt64
        var revision: Int
    }

    var clusters: [Int: Cluster] = [:]
    var nextCluster = 1
    var clusterOf: [String: Int] = [:]
    private var running: Set<String> = []
    private var unhealthy: Set<String> = []
    nonisolated let record: LabRecord

    public init(record: LabRecord = LabRecord()) {
        self.record = record
    }

    /// Writes down which members run now and whether the cluster has quorum.
    private func note() {
        let members = clusters.values.map(\.members.count).max() ?? 0
        record.etcd(running: Array(running.filter { clusterOf[$0] != nil }), members: members, quorum: hasQuorum)
    }

    func isRunning(_ node: String) -> Bool { running.contains(node) }

    /// Whether the node's etcd data directory holds anything (bootstrap then says AlreadyExists).
    func hasData(_ node: String) -> Bool { clusterOf[node] != nil }

    func setRunning(_ node: String, _ isRunning: Bool, unhealthy isUnhealthy: Bool) {
        let before = running
        if isRunning { running.insert(node) } else { running.remove(node) }
        if isUnhealthy { unhealthy.insert(node) } else { unhealthy.remove(node) }
        if before != running, clusterOf[node] != nil { note() }
    }

    /// The number of distinct etcd clusters with members: more than one means a split brain.
    public var clusterCount: Int { clusters.values.filter { !$0.members.isEmpty }.count }

    /// Whether some etcd cluster can serve writes: what kube-apiserver needs to answer at all.
    public var hasQuorum: Bool { clusters.values.contains { !$0.members.isEmpty && hasQuorum($0) } }

    func bootstrap(node: String, hostname: String, address: String) throws -> Member {
        guard clusterOf[node] == nil else { throw RPCError(code: .alreadyExists, message: "etcd data directory is not empty") }
        let member = Member(id: Self.memberID(), node: node, hostname: hostname, address: address)
        clusters[nextCluster] = Cluster(members: [member], leader: member.id, revision: 1)
        clusterOf[node] = nextCluster
        nextCluster += 1
        note()
        return member
    }

    /// A control plane without data joins the first cluster that has quorum; false when there is none yet.
    func join(node: String, hostname: String, address: String) -> Bool {
        guard clusterOf[node] == nil else { return true }
        guard let (key, _) = clusters.sorted(by: { $0.key < $1.key }).first(where: { hasQuorum($0.value) }) else { return false }
        clusters[key]!.members.append(Member(id: Self.memberID(), node: node, hostname: hostname, address: address))
        clusters[key]!.revision += 1
        clusterOf[node] = key
        note()
        return true
    }

    /// The node removes its own member and deletes its data (graceful reset, EtcdLeaveCluster).
    func leave(node: String) throws {
        guard let key = clusterOf[node] else { return }
        guard clusters[key]!.members.count > 1 else {
            throw RPCError(code: .failedPrecondition, message: "cannot leave a single-member etcd cluster")
        }
        removeFromCluster(key, where: { $0.node == node })
        clusterOf[node] = nil
        note()
    }

    /// Forgets the data of a node whose disk was wiped without leaving (non-graceful reset).
    func wipe(node: String) {
        clusterOf[node] = nil
    }

    func removeMember(id: UInt64, via node: String) throws {
        let key = try healthyCluster(of: node)
        guard let member = clusters[key]!.members.first(where: { $0.id == id }) else {
            throw RPCError(code: .notFound, message: "etcd member \(String(id, radix: 16)) not found")
        }
        removeFromCluster(key, where: { $0.id == id })
        clusterOf[member.node] = nil
        note()
    }

    func members(via node: String) throws -> [Member] {
        clusters[try healthyCluster(of: node)]!.members
    }

    func forfeitLeadership(node: String) throws -> String {
        let key = try healthyCluster(of: node)
        let cluster = clusters[key]!
        guard cluster.members.count > 1 else { throw RPCError(code: .failedPrecondition, message: "cannot forfeit leadership, only one member") }
        guard let me = cluster.members.first(where: { $0.node == node }), cluster.leader == me.id else { return "" }
        let next = cluster.members.first { $0.node != node && running.contains($0.node) } ?? cluster.members.first { $0.node != node }!
        clusters[key]!.leader = next.id
        return next.hostname
    }

    func status(node: String) throws -> (member: Member, leader: UInt64, revision: Int, errors: [String]) {
        let key = try healthyCluster(of: node)
        let cluster = clusters[key]!
        let member = cluster.members.first { $0.node == node }!
        let errors = unhealthy.contains(node) ? ["etcdserver: member \(String(member.id, radix: 16)) is unhealthy: simulated fault"] : []
        return (member, cluster.leader, cluster.revision, errors)
    }

    /// Members with a raised alarm: a node with the `etcd-alarm` fault raises NOSPACE until disarmed.
    private var alarmed: Set<UInt64> = []
    private var disarmed: Set<String> = []

    func raiseAlarm(node: String) {
        guard !disarmed.contains(node), let key = clusterOf[node], let member = clusters[key]?.members.first(where: { $0.node == node }) else { return }
        alarmed.insert(member.id)
    }

    func alarms(via node: String) throws -> [UInt64] {
        let key = try healthyCluster(of: node)
        return clusters[key]!.members.map(\.id).filter(alarmed.contains)
    }

    func disarmAlarms(via node: String) throws -> [UInt64] {
        let cleared = try alarms(via: node)
        for id in cleared {
            alarmed.remove(id)
            if let member = clusters.values.flatMap(\.members).first(where: { $0.id == id }) { disarmed.insert(member.node) }
        }
        return cleared
    }

    /// A snapshot in etcd's shape: whole bbolt pages (4096 bytes; here holding the revision and
    /// the membership, the lab's Kubernetes objects live in its API's store) and then the SHA-256
    /// of those pages, as etcd appends it, so the size modulo 512 is 32 as talosctl checks.
    func snapshot(node: String) throws -> Data {
        let key = try healthyCluster(of: node)
        let cluster = clusters[key]!
        let text = "lab etcd snapshot\nrevision: \(cluster.revision)\n" + cluster.members.map { "member: \($0.hostname) \(String($0.id, radix: 16))\n" }.joined()
        var pages = Data(text.utf8)
        pages.append(Data(repeating: 0, count: (4096 - pages.count % 4096) % 4096 + 4096))
        return pages + Data(SHA256.hash(data: pages))
    }

    private func healthyCluster(of node: String) throws -> Int {
        guard let key = clusterOf[node] else { throw RPCError(code: .failedPrecondition, message: "etcd is not running on this node") }
        guard hasQuorum(clusters[key]!) else { throw RPCError(code: .unavailable, message: "etcdserver: request timed out (no quorum)") }
        return key
    }

    /// An "unhealthy" member still votes (it reports errors, as a slow disk would); only members
    /// whose node is down count against quorum.
    private func hasQuorum(_ cluster: Cluster) -> Bool {
        let healthy = cluster.members.filter { running.contains($0.node) }.count
        return !cluster.members.isEmpty && healthy >= cluster.members.count / 2 + 1
    }

    private func removeFromCluster(_ key: Int, where matches: (Member) -> Bool) {
        clusters[key]!.members.removeAll(where: matches)
        clusters[key]!.revision += 1
        if let leader = clusters[key]!.members.first, !clusters[key]!.members.contains(where: { $0.id == clusters[key]!.leader }) {
            clusters[key]!.leader = leader.id
        }
    }

    private static func memberID() -> UInt64 { UInt64.random(in: 1...UInt64.max) }
}

extension SimulatedEtcd {
    /// Membership as a real etcd keeps it on disk; which members run is the nodes' business.
    func snapshot() -> TwinSnapshot.EtcdState {
        TwinSnapshot.EtcdState(clusters: clusters.sorted { $0.key < $1.key }.map { key, cluster in
            .init(key: key, members: cluster.members.map { .init(id: $0.id, node: $0.node, hostname: $0.hostname, address: $0.address) },
                  leader: cluster.leader, revision: cluster.revision)
        }, nextCluster: nextCluster)
    }

    /// `running`: the members whose machines resume running (they never went down), so a restored
    /// lab does not record them coming up one by one as a loss of quorum.
    func restore(_ state: TwinSnapshot.EtcdState, running resuming: [String]) {
        clusters = [:]
        clusterOf = [:]
        for cluster in state.clusters {
            clusters[cluster.key] = Cluster(members: cluster.members.map { Member(id: $0.id, node: $0.node, hostname: $0.hostname, address: $0.address) },
                                            leader: cluster.leader, revision: cluster.revision)
            for member in cluster.members { clusterOf[member.node] = cluster.key }
        }
        nextCluster = state.nextCluster
        running = Set(resuming.filter { clusterOf[$0] != nil })
        if !running.isEmpty { note() }
    }
}
