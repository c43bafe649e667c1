import Foundation
import ProvisionCore
import Synchronization
import TalosKit

/// What Talos step kinds share in one run: the secrets bundle (decrypted once), one admin client
/// certificate, one connection per node and mode, and the rendered configs. Registered in the
/// run's `Services`; a step without one makes its own.
public final class TalosAccess: Sendable {
    /// Configured nodes only: a node in maintenance is talked to on the connection its probe
    /// identified it on (`TalosProbe.Result.connection`), never on one of its own.
    public enum Access: String, Sendable {
        case admin
    }

    let inventory: Inventory
    let store: SecretsStore
    let stateDirectory: String
    /// Tests point the client at simulated nodes on other ports.
    let port: Int
    private let cache = Mutex<Cache>(Cache())

    private struct Cache {
        var bundle: SecretsBundle?
        var credentials: (ca: String, certificate: String, key: String)?
        var connections: [String: TalosConnection] = [:]
        /// Where this run found a node in maintenance away from its inventory address (its DHCP lease).
        var located: [String: String] = [:]
        /// What the run has already told the user about where nodes are (each said once).
        var noticed: Set<String> = []
    }

    /// The latest scan of the node network for machines in maintenance (`NodeLocator`).
    let scans = LatestScan()

    /// A talosconfig's client certificate (`--talosconfig`), used instead of one minted from the
    /// bundle: a backup host holding only `os:etcd:backup` needs no bundle to snapshot etcd.
    let supplied: (ca: String, certificate: String, key: String)?

    public init(inventory: Inventory, stateDirectory: String, credentials: CredentialResolver, port: Int = 50000,
                clientCredentials: (ca: String, certificate: String, key: String)? = nil) {
        self.inventory = inventory
        store = SecretsStore(inventory: inventory, stateDirectory: stateDirectory, credentials: credentials)
        self.stateDirectory = stateDirectory
        self.port = port
        supplied = clientCredentials
    }

    /// The run talks to Talos with a talosconfig's certificate rather than the bundle's CA.
    public var usesSuppliedCredentials: Bool { supplied != nil }

    public convenience init(context: StepContext) {
        self.init(inventory: context.inventory, stateDirectory: context.stateDirectory, credentials: context.credentials)
    }

    public static func from(_ context: StepContext) -> TalosAccess {
        context.services[TalosAccess.self] ?? TalosAccess(context: context)
    }

    public func bundle() async throws -> SecretsBundle {
        if let bundle = cache.withLock({ $0.bundle }) { return bundle }
        guard store.exists else { throw StepError.permanent("no secrets bundle at \(store.path): run the secrets step first (provision up)") }
        let bundle = try await store.load()
        cache.withLock { $0.bundle = bundle }
        return bundle
    }

    /// The admin credentials this run uses: minted once from the OS CA, never written to disk.
    public func credentials() async throws -> (ca: String, certificate: String, key: String) {
        if let supplied { return supplied }
        if let credentials = cache.withLock({ $0.credentials }) { return credentials }
        let credentials = try TalosConfig.credentials(bundle: try await bundle(), roles: ["os:admin"], validity: 86400)
        cache.withLock { $0.credentials = credentials }
        return credentials
    }

    public func address(of node: String) throws -> String {
        guard let spec = inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        return spec.address.value.description
    }

    /// A client on the shared connection to `node` in the given mode.
    public func client(_ node: String, _ access: Access, timeout: Duration = .seconds(10)) async throws -> TalosClient {
        let host = try address(of: node)
        let key = "\(host)|\(access.rawValue)"
        let credentials = try await credentials()
        let mode = TalosTLS.Mode.configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key)
        let connection = try cache.withLock { cache -> TalosConnection in
            if let existing = cache.connections[key] { return existing }
            let made = try TalosConnection(host: host, port: port, mode: mode)
            cache.connections[key] = made
            return made
        }
        var client = TalosClient(connection: connection)
        client.timeout = timeout
        return client
    }

    /// Which state the node's API is in, from the identity its handshake shows (never by retrying
    /// insecurely). The result's connection stays with that identity, for a call that follows.
    /// Before the bundle exists (first run, machines come up in parallel with the secrets step)
    /// only maintenance can be recognised, and a configured node shows as "configured-unverified".
    /// `at`: another address than the inventory's (where a node in maintenance was found).
    public func probe(_ node: String, at host: String? = nil, links: Bool = false, etcdMembers: Bool = false) async throws -> TalosProbe.Result {
        let credentials = store.exists || cache.withLock({ $0.bundle != nil }) ? try await credentials() : nil
        var probe = TalosProbe(host: try host ?? address(of: node), port: port, credentials: credentials)
        probe.timeout = .seconds(3)
        probe.readDisks = false
        probe.readLinks = links
        probe.readEtcdMembers = etcdMembers
        return await probe.run()
    }

    /// The node's machine config, rendered and validated as `provision config render` shows it.
    public func config(for node: String) async throws -> String {
        guard let spec = inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        let renderer = try await renderer()
        do { return try renderer.yaml(renderer.target(node: spec)) } catch { throw StepError.permanent("\(error)") }
    }

    /// A GPU pool's worker config: what its instances get as user data.
    public func config(forPool pool: GPUPoolSpec) async throws -> String {
        let renderer = try await renderer()
        do { return try renderer.yaml(renderer.target(pool: pool)) } catch { throw StepError.permanent("\(error)") }
    }

    /// The renderer with the bundle. A cluster that has configs has a version contract and a
    /// recorded Kubernetes version: both recorded here for one created before they were kept.
    func renderer() async throws -> MachineConfigRenderer {
        let bundle = try await bundle()
        let kubernetes: KubernetesVersions
        do {
            _ = try VersionContract.frozen(stateDirectory: stateDirectory, version: inventory.cluster.talosVersion.value)
            kubernetes = try KubernetesVersions.recorded(stateDirectory: stateDirectory, version: inventory.cluster.kubernetesVersion.value)
        } catch {
            throw StepError.permanent("cannot record the cluster's versions in \(stateDirectory): \(error)")
        }
        do {
            var renderer = try MachineConfigRenderer(bundle: bundle, inventory: inventory)
            renderer.kubernetes = kubernetes
            return renderer
        } catch { throw StepError.permanent("\(error)") }
    }

    /// The longest pause between two looks of a wait (they start at 100 ms and grow to this): a
    /// quarter second, so a step sees its condition within 250 ms of it becoming true; shorter on a
    /// lab's compressed clock, never under 10 ms.
    public var pollInterval: Duration {
        guard let scale = inventory.lab?.timeScale.value else { return .milliseconds(250) }
        return .milliseconds(min(250, max(10, Int(2000 * scale))))
    }

    /// The fallback pause for waits a Talos stage event wakes: long, since the event comes first.
    public var eventPollInterval: Duration { scaled(.seconds(2), floor: pollInterval) }

    /// A real-world wait bound on the lab's clock (never under `floor`, so a loaded machine still makes it).
    public func scaled(_ duration: Duration, floor: Duration = .seconds(30)) -> Duration {
        guard let scale = inventory.lab?.timeScale.value, scale < 1 else { return duration }
        return max(floor, duration * scale)
    }

    func located(_ node: String) -> String? { cache.withLock { $0.located[node] } }
    func remember(_ node: String, at address: String?) { cache.withLock { $0.located[node] = address } }
    /// True the first time `notice` is asked for in this run.
    func firstTime(_ notice: String) -> Bool { cache.withLock { $0.noticed.insert(notice).inserted } }

    public func close() {
        let connections = cache.withLock { cache in
            defer { cache.connections = [:] }
            return Array(cache.connections.values)
        }
        for connection in connections { connection.close() }
    }
}
