import Foundation
import KubeKit

/// The lab cluster's Kubernetes API: HTTPS at the cluster endpoint (the VIP on loopback), client
/// certificates from the cluster's Kubernetes CA, discovery, the objects the steps touch with
/// server-side apply, and the control loops that make nodes, rollouts and stores progress. At a
/// VIP it answers only while a control plane holds the VIP (`LabVIP`); elsewhere it answers 503
/// until etcd has quorum, as a real control plane does before bootstrap.
public final class LabKubeAPI: Sendable {
    let server: LabHTTPServer
    let store: KubeStore
    let loop: Task<Void, Never>
    let audit = KubeAudit()
    /// Who holds the shared address the API answers at; nil when the endpoint is not a VIP.
    let vip: LabVIP?
    public var port: Int { server.port }

    /// The control plane holding the VIP now, if the endpoint is one.
    public var vipHolder: String? { get async { await vip?.holder } }

    /// `vip`: the endpoint's host is the cluster's shared address, answered only while a control
    /// plane holds it (`LabVIP`); nil for an endpoint that always answers (a load balancer, a DNS name).
    public convenience init(host: String, port: Int, caPEM: String, caKeyPEM: String, cluster: SimulatedTalosCluster,
                            kubernetesVersion: String, timeScale: Double, vip: Bool = false) async throws {
        try await self.init(host: host, port: port, caPEM: caPEM, caKeyPEM: caKeyPEM, cluster: cluster,
                            kubernetesVersion: kubernetesVersion, timeScale: timeScale, vip: vip, restoring: nil)
    }

    init(host: String, port: Int, caPEM: String, caKeyPEM: String, cluster: SimulatedTalosCluster,
         kubernetesVersion: String, timeScale: Double, vip: Bool, restoring saved: TwinSnapshot.KubeState?) async throws {
        let store = KubeStore()
        if let saved { await store.restore(saved) }
        if await !cluster.etcd.keyspaceLost { await store.seedNamespaces() }
        // The objects live in etcd: a snapshot carries them, a restore brings them back.
        await cluster.etcd.attach(keyspace: store)
        let router = KubeRouter(store: store, kubernetesVersion: kubernetesVersion, endpoint: "\(host):\(port)", directory: cluster.directory)
        let tls = try KubeAPITLS(caPEM: caPEM, caKeyPEM: caKeyPEM, addresses: [host])
        let etcd = cluster.etcd, audit = self.audit, directory = cluster.directory
        server = try await LabHTTPServer(host: host, port: port, security: { try tls.secure($0) }) { request in
            let response: LabHTTPResponse
            if await etcd.hasQuorum {
                response = await router.respond(request)
            } else {
                response = router.reply(APIFailure(code: 503, reason: "ServiceUnavailable", message: "etcd has no quorum yet: bootstrap a control plane").status, 503)
            }
            if request.method != .GET, response.status < 300 {
                directory.record.mutation("kubernetes", "\(request.method.rawValue) \(request.path.split(separator: "?").first ?? "")")
                await directory.commit()
            }
            await audit.record(request.method.rawValue, request.path, response.status)
            return response
        }
        let controller = KubeController(store: store, directory: cluster.directory, kubernetesVersion: kubernetesVersion, timeScale: timeScale)
        self.store = store
        let shared = vip ? LabVIP(address: host, cluster: cluster, timeScale: timeScale) : nil
        let gate = server.gate
        if shared != nil { gate.set(open: false, cut: true) }
        self.vip = shared
        loop = Task {
            while !Task.isCancelled {
                if let shared {
                    let (answered, moved) = await shared.update()
                    gate.set(open: answered, cut: moved)
                }
                await controller.tick()
                try? await Task.sleep(for: .milliseconds(timeScale == 0 ? 10 : 50))
            }
        }
    }

    public func stop() async {
        loop.cancel()
        store.watches.reset(at: 0)
        await server.close()
    }

    func snapshot() async -> TwinSnapshot.KubeState { await store.snapshot() }

    /// Every request answered, in order: method, path and status (what an audit log shows).
    public var requests: [(method: String, path: String, status: Int)] { get async { await audit.entries } }
}

actor KubeAudit {
    private(set) var entries: [(method: String, path: String, status: Int)] = []

    func record(_ method: String, _ path: String, _ status: Int) { entries.append((method, path, status)) }
}
