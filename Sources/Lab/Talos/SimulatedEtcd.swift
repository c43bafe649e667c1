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
        /// Joined with MemberAddAsLearner and not promoted yet: it follows the log but does not vote.
        public var isLearner = false
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
    /// The Kubernetes objects etcd holds: the lab's API server keeps them in its store, so a
    /// snapshot carries them and a recovery puts them back.
    private var keyspace: KubeStore?
    /// Nodes whose etcd data is destroyed: the data directory is not empty, etcd fails to start.
    private var corrupted: Set<String> = []
    /// Snapshots uploaded with EtcdRecover (`/var/lib/etcd.snapshot`), until Bootstrap restores one.
    private var pendingRecovery: [String: Data] = [:]
    /// Every member's data was destroyed: a fresh bootstrap starts from an empty keyspace.
    private(set) var keyspaceLost = false
    private var promotionsHeld = false

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
    func hasData(_ node: String) -> Bool { clusterOf[node] != nil || corrupted.contains(node) }

    /// The etcd service as ServiceList shows it on a control plane: Running with data, Failed when
    /// the data is destroyed, Preparing (waiting to be bootstrapped or to join) without.
    func service(_ node: String) -> (state: String, healthy: Bool) {
        if corrupted.contains(node) { return ("Failed", false) }
        if clusterOf[node] != nil { return ("Running", !unhealthy.contains(node)) }
        return ("Preparing", false)
    }

    func attach(keyspace store: KubeStore) { keyspace = store }

    /// `provision lab break-etcd`: every member's data destroyed at once (a bad disk firmware, an
    /// operator's rm): no quorum, no Kubernetes API, etcd failing on every control plane until its
    /// EPHEMERAL partition is wiped and a snapshot is restored. Returns the nodes hit.
    public func destroyEverywhere() async -> [String] {
        let nodes = clusterOf.keys.sorted()
        corrupted.formUnion(nodes)
        clusters = [:]
        clusterOf = [:]
        keyspaceLost = true
        await keyspace?.wipeAll()
        for node in nodes { record.note(node, "etcd-destroyed", detail: "etcd data destroyed") }
        note()
        return nodes
    }

    /// One node's etcd data destroyed (a bad disk): its data directory is not empty and etcd fails
    /// to start there; the node leaves its cluster's running members.
    public func destroy(node: String) {
        if let key = clusterOf[node] { removeFromCluster(key, where: { $0.node == node }) }
        clusterOf[node] = nil
        running.remove(node)
        corrupted.insert(node)
        record.note(node, "etcd-destroyed", detail: "etcd data destroyed")
        note()
    }

    /// EtcdRecover: the snapshot is written where Bootstrap with `recover_etcd` reads it.
    func stageRecovery(node: String, snapshot: Data) {
        pendingRecovery[node] = snapshot
    }

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

    /// A new single-member cluster on `node`: empty, or (`recovering`) restored from the snapshot
    /// EtcdRecover uploaded, which is checked as etcd checks it (unless `skipHashCheck`, for a raw
    /// `db` copy) and then deleted. Real Talos restores in the etcd service after answering; the
    /// lab does it before, so a bad snapshot is this call's error.
    func bootstrap(node: String, hostname: String, address: String, recovering: Bool = false, skipHashCheck: Bool = false) async throws -> Member {
        guard !hasData(node) else { throw RPCError(code: .alreadyExists, message: "etcd data directory is not empty") }
        var revision = 1
        if recovering {
            guard let data = pendingRecovery[node] else {
                throw RPCError(code: .failedPrecondition, message: "etcd snapshot not found at /var/lib/etcd.snapshot: upload one with EtcdRecover first")
            }
            let content = try Self.open(snapshot: data, checkHash: !skipHashCheck)
            revision = content.revision + 1
            if let kube = content.kube { await keyspace?.replaceAll(kube) }
            pendingRecovery[node] = nil
        } else if keyspaceLost {
            await keyspace?.wipeAll()
            await keyspace?.seedNamespaces()
        }
        guard !hasData(node) else { throw RPCError(code: .alreadyExists, message: "etcd data directory is not empty") }
        keyspaceLost = false
        let member = Member(id: Self.memberID(), node: node, hostname: hostname, address: address)
        clusters[nextCluster] = Cluster(members: [member], leader: member.id, revision: revision)
        clusterOf[node] = nextCluster
        nextCluster += 1
        record.note(node, "etcd-bootstrap", detail: recovering ? "recovered from a snapshot at revision \(revision - 1)" : "new cluster")
        note()
        return member
    }

    /// A control plane without data joins the first cluster that has quorum, as a learner (talos
    /// v1.13.9 `system/services/etcd.go` addMember: MemberAddAsLearner, any old member of the same
    /// hostname removed first); false when there is none yet.
    func join(node: String, hostname: String, address: String) -> Bool {
        guard clusterOf[node] == nil else { return true }
        guard let (key, _) = clusters.sorted(by: { $0.key < $1.key }).first(where: { hasQuorum($0.value) }) else { return false }
        clusters[key]!.members.removeAll { $0.hostname == hostname && $0.node != node }
        clusters[key]!.members.append(Member(id: Self.memberID(), node: node, hostname: hostname, address: address, isLearner: true))
        clusters[key]!.revision += 1
        clusterOf[node] = key
        note()
        return true
    }

    /// Why etcd would refuse this node's removal of its own member, as Talos' LeaveCluster reports it
    /// (`failed to leave cluster: failed to remove member <id>: <etcd's error>`, talos v1.13.9
    /// `internal/pkg/etcd/etcd.go` and the LeaveEtcd task): without quorum etcd answers "unhealthy
    /// cluster", which Talos retries for 5 minutes (`retried`); when the members left would not
    /// have enough started voters (a single member, or another one down), "not enough started
    /// members", at once (etcd v3.6 `mayRemoveMember`, read by audit 2, not by us). Nil: it may leave.
    struct LeaveRefusal: Sendable {
        var text: String
        var retried: Bool
    }

    func leaveRefusal(node: String) -> LeaveRefusal? {
        guard let key = clusterOf[node], let member = clusters[key]!.members.first(where: { $0.node == node }) else { return nil }
        let prefix = "failed to leave cluster: failed to remove member \(member.id): etcdserver: "
        guard hasQuorum(clusters[key]!) else { return LeaveRefusal(text: prefix + "unhealthy cluster", retried: true) }
        let remaining = clusters[key]!.members.filter { $0.node != node && !$0.isLearner }
        let started = remaining.filter { running.contains($0.node) }.count
        if remaining.isEmpty || started < remaining.count / 2 + 1 {
            return LeaveRefusal(text: prefix + "re-configuration failed due to not enough started members", retried: false)
        }
        return nil
    }

    /// Whether this node's member is a learner still.
    func isLearner(_ node: String) -> Bool {
        guard let key = clusterOf[node] else { return false }
        return clusters[key]!.members.contains { $0.node == node && $0.isLearner }
    }

    /// MemberPromote, once the learner has caught up (etcd decides; Talos just retries): it votes.
    /// Held while `promotionsHeld` (a test's lab waiting on a slow learner).
    func promote(node: String) -> Bool {
        guard !promotionsHeld, let key = clusterOf[node], running.contains(node),
              let index = clusters[key]!.members.firstIndex(where: { $0.node == node && $0.isLearner }) else { return false }
        clusters[key]!.members[index].isLearner = false
        clusters[key]!.revision += 1
        record.note(node, "etcd-promoted", detail: "learner promoted to a voting member")
        note()
        return true
    }

    /// Keeps learners from catching up (a test's slow join), until released.
    public func holdPromotions(_ held: Bool) { promotionsHeld = held }

    /// The node removes its own member and deletes its data (graceful reset, EtcdLeaveCluster).
    func leave(node: String) throws {
        guard let key = clusterOf[node] else { return }
        if let refusal = leaveRefusal(node: node) { throw RPCError(code: .unknown, message: refusal.text) }
        removeFromCluster(key, where: { $0.node == node })
        clusterOf[node] = nil
        note()
    }

    /// Forgets the data of a node whose disk was wiped without leaving (non-graceful reset), and
    /// any snapshot uploaded there (it lives on the same EPHEMERAL partition). Its member stays in
    /// the list of the others, stale, as etcd keeps it; but when no other node held that cluster's
    /// data, the cluster is gone, and the Kubernetes objects with it.
    func wipe(node: String) async {
        let key = clusterOf[node]
        clusterOf[node] = nil
        corrupted.remove(node)
        pendingRecovery[node] = nil
        guard let key, !clusterOf.values.contains(key) else { return }
        clusters[key] = nil
        keyspaceLost = true
        await keyspace?.wipeAll()
        record.note(node, "etcd-lost", detail: "its last member's data was wiped: etcd and the Kubernetes objects are gone")
        note()
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

    /// A snapshot in etcd's shape: whole bbolt pages (4096 bytes; here holding the revision, the
    /// membership and every Kubernetes object) and then the SHA-256 of those pages, as etcd appends
    /// it, so the size modulo 512 is 32 as talosctl checks.
    func snapshot(node: String) async throws -> Data {
        let key = try healthyCluster(of: node)
        let cluster = clusters[key]!
        let content = SnapshotContent(revision: cluster.revision, members: cluster.members.map(\.hostname), kube: await keyspace?.snapshot())
        var pages = try JSONEncoder().encode(content) + Data("\n".utf8)
        pages.append(Data(repeating: 0, count: (4096 - pages.count % 4096) % 4096 + 4096))
        return pages + Data(SHA256.hash(data: pages))
    }

    struct SnapshotContent: Codable {
        var format = "provision-lab-etcd/1"
        var revision: Int
        var members: [String]
        var kube: TwinSnapshot.KubeState?
    }

    /// What etcd's restore checks (the appended hash, unless told not to), then the pages' content.
    static func open(snapshot data: Data, checkHash: Bool) throws -> SnapshotContent {
        guard data.count > 32 else { throw RPCError(code: .invalidArgument, message: "snapshot file is too short (\(data.count) bytes)") }
        var pages = data
        if checkHash {
            guard data.count % 512 == 32, Data(SHA256.hash(data: data.prefix(data.count - 32))) == data.suffix(32) else {
                throw RPCError(code: .dataLoss, message: "snapshot file integrity check failed: the appended SHA-256 does not match (a raw db copy needs recover_skip_hash_check)")
            }
            pages = data.prefix(data.count - 32)
        }
        let end = (pages.lastIndex { $0 != 0 } ?? pages.startIndex - 1) + 1
        guard let content = try? JSONDecoder().decode(SnapshotContent.self, from: pages[pages.startIndex..<end]) else {
            throw RPCError(code: .dataLoss, message: "snapshot file is not an etcd snapshot this lab wrote")
        }
        return content
    }

    private func healthyCluster(of node: String) throws -> Int {
        guard let key = clusterOf[node] else { throw RPCError(code: .failedPrecondition, message: "etcd is not running on this node") }
        guard hasQuorum(clusters[key]!) else { throw RPCError(code: .unavailable, message: "etcdserver: request timed out (no quorum)") }
        return key
    }

    /// An "unhealthy" member still votes (it reports errors, as a slow disk would); only members
    /// whose node is down count against quorum. Learners do not vote.
    private func hasQuorum(_ cluster: Cluster) -> Bool {
        let voters = cluster.members.filter { !$0.isLearner }
        let healthy = voters.filter { running.contains($0.node) }.count
        return !voters.isEmpty && healthy >= voters.count / 2 + 1
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
            .init(key: key, members: cluster.members.map { .init(id: $0.id, node: $0.node, hostname: $0.hostname, address: $0.address, isLearner: $0.isLearner ? true : nil) },
                  leader: cluster.leader, revision: cluster.revision)
        }, nextCluster: nextCluster, corrupted: corrupted.sorted(), pendingRecovery: pendingRecovery, keyspaceLost: keyspaceLost)
    }

    /// `running`: the members whose machines resume running (they never went down), so a restored
    /// lab does not record them coming up one by one as a loss of quorum.
    func restore(_ state: TwinSnapshot.EtcdState, running resuming: [String]) {
        clusters = [:]
        clusterOf = [:]
        for cluster in state.clusters {
            clusters[cluster.key] = Cluster(members: cluster.members.map { Member(id: $0.id, node: $0.node, hostname: $0.hostname, address: $0.address, isLearner: $0.isLearner ?? false) },
                                            leader: cluster.leader, revision: cluster.revision)
            for member in cluster.members { clusterOf[member.node] = cluster.key }
        }
        nextCluster = state.nextCluster
        corrupted = Set(state.corrupted ?? [])
        pendingRecovery = state.pendingRecovery ?? [:]
        keyspaceLost = state.keyspaceLost ?? false
        running = Set(resuming.filter { clusterOf[$0] != nil })
        if !running.isEmpty { note() }
    }
}
