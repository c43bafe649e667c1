import Foundation

/// Who holds the cluster's shared address (Layer 2 VIP), as talos v1.13.9 elects it
/// (`internal/app/machined/pkg/controllers/network/operator/vip.go`):
/// - a control plane campaigns once its config puts the VIP on one of its links, its local etcd is
///   Running and healthy (a quorum read) and its kubelet is not tearing down; the kube-apiserver
///   is not waited for (`vip.go:156-181, 300`);
/// - the first to queue wins (an etcd election); the others wait in line (`vip.go:221-263`);
/// - a holder that reboots or shuts down gracefully gives it up first (StopAllPods, before etcd
///   and apid stop): the next in line takes it at once (`v1alpha1_sequencer.go:244-251`);
/// - a holder that dies keeps it until its 60 s etcd lease expires (`vip.go:233`), and a holder
///   whose etcd lost quorum keeps it until its lease cannot be renewed (about as long);
/// - nobody holds it before a control plane's etcd is up (docs `vip.mdx`: "will not come alive
///   until after you have bootstrapped").
actor LabVIP {
    let address: String
    let cluster: SimulatedTalosCluster
    let lease: Duration
    private(set) var holder: String?
    /// Eligible control planes in the order they queued.
    private var queue: [String] = []
    /// Since when the holder can no longer renew its lease (it died, or etcd lost quorum).
    private var lapsing: ContinuousClock.Instant?

    init(address: String, cluster: SimulatedTalosCluster, timeScale: Double) {
        self.address = address
        self.cluster = cluster
        lease = .milliseconds(Int(60_000 * timeScale))
    }

    /// Looks again (the lab's control loop calls this every tick). Returns whether anyone alive
    /// answers at the address, and whether it moved to another machine since the last look.
    func update() async -> (answered: Bool, moved: Bool) {
        var eligible: [String] = []
        for node in cluster.nodes where await node.campaignsForVIP(address) { eligible.append(node.spec.name) }
        queue = queue.filter(eligible.contains) + eligible.filter { !queue.contains($0) }
        let before = holder
        if let current = holder, let node = cluster.node(current), !eligible.contains(current) {
            if await node.leavesGracefully {
                release(current, "gave it up: it is going down")
            } else {
                let since = lapsing ?? ContinuousClock.now
                lapsing = since
                if ContinuousClock.now - since >= lease { release(current, "its etcd lease expired") }
            }
        } else {
            lapsing = nil
        }
        if holder == nil, let next = queue.first {
            holder = next
            cluster.record.note(next, "vip", detail: "holds \(address)")
        }
        let alive = await holder.flatMap(cluster.node)?.powered ?? false
        return (holder != nil && alive, holder != before)
    }

    private func release(_ node: String, _ why: String) {
        cluster.record.note(node, "vip", detail: "released \(address): \(why)")
        holder = nil
        lapsing = nil
    }
}

extension SimulatedTalosNode {
    /// Whether this machine campaigns for `vip` now: running, its config's Layer2VIPConfig on one of
    /// its links, its etcd Running and healthy with quorum, its kubelet up.
    func campaignsForVIP(_ vip: String) async -> Bool {
        guard powered, stage == .running, !restarting.contains("kubelet"), let config, config.controlPlane,
              config.network.sharedAddresses(nicMAC: spec.nicMAC).contains(vip), !spec.faults.contains(.etcdUnhealthy) else { return false }
        let service = await etcd.service(spec.name)
        let running = await etcd.isRunning(spec.name)
        let quorum = await etcd.hasQuorum
        return service.state == "Running" && service.healthy && running && quorum
    }

    /// Powered and on its way down (a reboot, a reset, a shutdown): Talos releases the VIP first.
    var leavesGracefully: Bool { powered && [.rebooting, .resetting, .shuttingDown].contains(stage) }
}
