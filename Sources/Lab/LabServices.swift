import Foundation
import Providers
import ProvisionCore

/// Everything a lab inventory simulates, on the addresses its providers name: the Talos nodes (VMs
/// powered on; Mac minis on at first, then, once off, woken by a magic packet at the metal provider's
/// listener only when it can wake them, else by `provision lab power-button`) and
/// the EC2 endpoint of its aws provider, whose instances join as Talos workers.
public final class LabServices: Sendable {
    public let cluster: SimulatedTalosCluster
    public let ec2: SimulatedEC2?
    public let ec2Endpoint: String?
    public let wakeOnLAN: [String]
    let ec2Server: LabEC2Server?
    let listeners: [LabWakeOnLAN]
    /// Starts the Kubernetes API once a control plane holds the cluster's CA (as kube-apiserver
    /// starts with the first control plane's config), and holds it.
    let kubeAPI: KubeAPIStarter
    let follower: HypervisorFollower?
    /// The stand-in Image Factory libvirt providers download boot media from.
    let factories: [LabImageFactory]
    /// Where the lab keeps its state (its twin, hypervisor files and record); nil for a test's lab.
    let labDirectory: String?

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `twin`: where the lab's state is kept between commands (`<state>/lab/twin.json`); a lab
    /// restored from it comes back as it was left. VMs follow the lab's test-driver hypervisor
    /// beside it (on while their domain runs), Mac minis start on (booted from USB by hand); without a twin (a
    /// test's lab) the VMs are simply on.
    /// `readOnly`: a dry run's lab, restored but recording nothing (its record file is not written).
    public static func start(_ inventory: Inventory, credentials: CredentialResolver, twin: String? = nil, readOnly: Bool = false) async throws -> LabServices {
        let saved = twin.flatMap(TwinSnapshot.load)
        let cluster = SimulatedTalosCluster(inventory: inventory, kept: saved?.nodes ?? [])
        var listeners: [LabWakeOnLAN] = []
        var factories: [LabImageFactory] = []
        var described: [String] = []
        do {
            for provider in inventory.providers where provider.kind.value == .metal {
                let host = provider.setting("broadcast") ?? "127.0.0.1", port = Int(provider.setting("port") ?? "9") ?? 9
                var machines: [MACAddress: SimulatedTalosNode] = [:]
                for node in inventory.nodes where node.machine.provider.value == provider.name.value {
                    if let mac = node.machine.mac?.value, let simulated = cluster.node(node.name.value) { machines[mac] = simulated }
                }
                let powerOn = inventory.lab.map { $0.scaled($0.delays.wakeOnLAN) } ?? LabDelays().wakeOnLAN
                listeners.append(try LabWakeOnLAN(host: host, port: port, machines: machines, powerOnDelay: powerOn))
                described.append("\(host):\(port) (\(machines.count) Mac minis)")
            }
            let (ec2, server, endpoint) = try await startEC2(inventory, cluster: cluster, credentials: credentials)
            factories = try await startImageFactories(inventory)
            let labDirectory = twin.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
            if let labDirectory, !readOnly { cluster.record.attach(path: labDirectory + "/record.jsonl") }
            cluster.record.lab("started")
            if let saved {
                await cluster.etcd.restore(saved.etcd, running: saved.nodes.filter { $0.powered && $0.config != nil }.map(\.name))
                for state in saved.nodes { await cluster.node(state.name)?.restore(state) }
                if let instances = saved.ec2 { await ec2?.restore(instances) }
            }
            for node in inventory.nodes {
                let kind = inventory.provider(named: node.machine.provider.value)?.kind.value
                let followsHypervisor = labDirectory != nil && kind == .libvirt
                // A fresh lab's Mac minis are on, booted from the Talos USB stick: the operator pressed
                // their power buttons, as nothing else can power on a mini that never ran Talos.
                if saved == nil, !followsHypervisor { await cluster.node(node.name.value)?.powerOn() }
            }
            let follower = labDirectory.map { HypervisorFollower(cluster: cluster, labDirectory: $0, restored: Set(saved?.nodes.map(\.name) ?? [])) }
            let kube = KubeAPIStarter(inventory: inventory, cluster: cluster, saved: saved?.kube)
            await kube.start()
            return LabServices(cluster: cluster, ec2: ec2, ec2Endpoint: endpoint, wakeOnLAN: described, ec2Server: server, listeners: listeners,
                               kubeAPI: kube, follower: follower, factories: factories, labDirectory: labDirectory)
        } catch {
            for listener in listeners { listener.close() }
            for factory in factories { await factory.close() }
            throw error
        }
    }

    /// The stand-in Image Factory where a libvirt provider downloads its boot media from: one per
    /// loopback address and port its `imageFactory` settings name.
    static func startImageFactories(_ inventory: Inventory) async throws -> [LabImageFactory] {
        var started: [LabImageFactory] = []
        var seen: Set<String> = []
        for provider in inventory.providers where provider.kind.value == .libvirt {
            guard let url = provider.setting("imageFactory").flatMap(URL.init(string:)), let host = url.host, host.hasPrefix("127."),
                  seen.insert("\(host):\(url.port ?? 80)").inserted else { continue }
            do {
                started.append(try await LabImageFactory(host: host, port: url.port ?? 80))
            } catch {
                for factory in started { await factory.close() }
                throw Failure(description: "the lab's Image Factory cannot listen on \(host):\(url.port ?? 80): \(error); is another `provision lab serve` running?")
            }
        }
        return started
    }

    private init(cluster: SimulatedTalosCluster, ec2: SimulatedEC2?, ec2Endpoint: String?, wakeOnLAN: [String],
                 ec2Server: LabEC2Server?, listeners: [LabWakeOnLAN], kubeAPI: KubeAPIStarter, follower: HypervisorFollower?, factories: [LabImageFactory],
                 labDirectory: String?) {
        self.factories = factories
        self.labDirectory = labDirectory
        self.cluster = cluster
        self.ec2 = ec2
        self.ec2Endpoint = ec2Endpoint
        self.wakeOnLAN = wakeOnLAN
        self.ec2Server = ec2Server
        self.listeners = listeners
        self.kubeAPI = kubeAPI
        self.follower = follower
    }

    static func startEC2(_ inventory: Inventory, cluster: SimulatedTalosCluster,
                         credentials: CredentialResolver) async throws -> (SimulatedEC2?, LabEC2Server?, String?) {
        guard let provider = inventory.providers.first(where: { $0.kind.value == .aws }),
              let endpoint = provider.setting("endpoint").flatMap(URL.init(string:)), let host = endpoint.host else { return (nil, nil, nil) }
        // The lab's endpoint checks every signature with the provider's own key pair.
        let pair = try await provider.awsCredentials(credentials)
        let ec2 = SimulatedEC2(cluster: cluster, addresses: instanceAddresses(inventory), talosVersion: inventory.cluster.talosVersion.value,
                               timeScale: inventory.lab?.timeScale.value ?? 1,
                               bootDelay: (inventory.lab?.delays ?? LabDelays()).ec2Boot.seconds)
        let server: LabEC2Server
        do {
            server = try await LabEC2Server(host: host, port: endpoint.port ?? 80, ec2: ec2, credentials: pair, region: provider.ec2Region)
        } catch {
            throw Failure(description: "the lab's EC2 endpoint cannot listen on \(host):\(endpoint.port ?? 80): \(error); is another `provision lab serve` running?")
        }
        return (ec2, server, "http://\(host):\(server.port)/")
    }

    /// Where instances live: free host addresses of the node network from .100 up, never a node's,
    /// the VIP or the gateway.
    static func instanceAddresses(_ inventory: Inventory, count: Int = 20) -> [String] {
        let network = inventory.cluster.nodeCIDR.value
        var used = Set(inventory.nodes.map(\.address.value))
        used.insert(inventory.cluster.gateway.value)
        if let vip = inventory.cluster.vip?.value { used.insert(vip) }
        var addresses: [String] = []
        var candidate = network.network.raw + 100
        while addresses.count < count, candidate < network.broadcast.raw {
            let address = IPv4Address(raw: candidate)
            if !used.contains(address) { addresses.append(address.description) }
            candidate += 1
        }
        return addresses
    }

    /// From now on every change the lab acknowledges (a config applied, a reset, a bootstrap, an
    /// object written, an instance launched) is saved to `path` before it is acknowledged, so even
    /// `kill -9` cannot make the lab forget what a command was told had happened.
    public func persist(to path: String) async {
        let writer = TwinWriter(services: self, path: path)
        await cluster.directory.setPersistence { await writer.commit() }
    }

    /// Writes the lab's state (0600, atomically) so the next command finds it as it was.
    public func save(to path: String) async throws {
        var snapshot = TwinSnapshot()
        for node in cluster.nodes { snapshot.nodes.append(await node.snapshot()) }
        snapshot.etcd = await cluster.etcd.snapshot()
        snapshot.kube = await kubeAPI.snapshot()
        snapshot.ec2 = await ec2?.snapshot()
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try PrivateFile.write(Array(try snapshot.data()), to: path)
    }

    public func stop() async {
        cluster.record.lab("stopped")
        follower?.stop()
        await kubeAPI.stop()
        for listener in listeners { listener.close() }
        await ec2Server?.close()
        for factory in factories { await factory.close() }
        await cluster.shutdown()
    }
}

/// Watches for the first control plane with the cluster's Kubernetes CA and then serves the lab's
/// Kubernetes API at the cluster endpoint.
actor KubeAPIStarter {
    let inventory: Inventory
    let cluster: SimulatedTalosCluster
    /// The objects of the last run, served again once the API is up.
    var saved: TwinSnapshot.KubeState?
    private var watcher: Task<Void, Never>?
    private(set) var api: LabKubeAPI?

    init(inventory: Inventory, cluster: SimulatedTalosCluster, saved: TwinSnapshot.KubeState?) {
        self.inventory = inventory
        self.cluster = cluster
        self.saved = saved
    }

    /// Adds ConfigMaps to the served API's keyspace; nil while the API is not up.
    func load(namespace: String, count: Int, bytes: Int) async -> Int? {
        guard let api else { return nil }
        return await api.store.load(namespace: namespace, count: count, bytes: bytes)
    }

    /// The API's objects, or the saved ones while it is not up yet (so a save never loses them).
    func snapshot() async -> TwinSnapshot.KubeState? {
        if let api { return await api.snapshot() }
        return saved
    }

    /// Serves at once when a control plane already holds the CA (a restored lab), else watches.
    func start() async {
        if await attempt() { return }
        watcher = Task {
            while !Task.isCancelled {
                if await attempt() { return }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// True once the API is up (or cannot ever be: no usable endpoint, or its address is taken).
    private func attempt() async -> Bool {
        guard let endpoint = URL(string: inventory.cluster.endpoint.value), let host = endpoint.host else { return true }
        let port = endpoint.port ?? 6443
        for node in cluster.nodes {
            guard let ca = await node.kubernetesCA else { continue }
            do {
                api = try await LabKubeAPI(host: host, port: port, caPEM: ca.certificate, caKeyPEM: ca.key, cluster: cluster,
                                           kubernetesVersion: inventory.cluster.kubernetesVersion.value, timeScale: inventory.lab?.timeScale.value ?? 1,
                                           vip: inventory.cluster.vip?.value.description == host, restoring: saved)
            } catch {
                FileHandle.standardError.write(Data("lab: the Kubernetes API cannot listen on \(host):\(port): \(error)\n".utf8))
            }
            return true
        }
        return false
    }

    func stop() async {
        watcher?.cancel()
        await api?.stop()
    }
}

/// Saves on request, at most one save at a time; each caller returns once a save that began after
/// its request has finished, so concurrent changes share saves without any being left out.
actor TwinWriter {
    let services: LabServices
    let path: String
    private var requested = 0
    private var completed = 0
    private var running = false
    private var waiting: [(ticket: Int, continuation: CheckedContinuation<Void, Never>)] = []

    init(services: LabServices, path: String) {
        self.services = services
        self.path = path
    }

    func commit() async {
        requested += 1
        let ticket = requested
        if !running { await drain() }
        if completed >= ticket { return }
        await withCheckedContinuation { waiting.append((ticket, $0)) }
    }

    private func drain() async {
        running = true
        while completed < requested {
            let target = requested
            do { try await services.save(to: path) } catch {
                FileHandle.standardError.write(Data("lab: cannot save the lab to \(path): \(error)\n".utf8))
            }
            completed = target
            let done = waiting.filter { $0.ticket <= target }
            waiting.removeAll { $0.ticket <= target }
            for waiter in done { waiter.continuation.resume() }
        }
        running = false
    }
}
