import Foundation
import Lab
import ProvisionCore
import TalosKit
import TestSupport

/// Simulated nodes named as in the demo inventory, with its rendered configs, on addresses of
/// their own so tests can run side by side.
struct LabFixture {
    static let bundle = Result { try SecretsBundle.generate() }
    let bundle: SecretsBundle
    let inventory: Inventory
    let renderer: MachineConfigRenderer
    let cluster: SimulatedTalosCluster

    /// `wakesFromPowerOff`: nodes whose hardware powers on from a magic packet (once armed).
    init(nodes: [String], platform: String = "nocloud", timeScale: Double = 0, faults: [String: Set<SimulatedFault>] = [:],
         wakesFromPowerOff: Set<String> = []) throws {
        bundle = try Self.bundle.get()
        var (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/demo.yaml")
        // Each node on an address of its own: its rendered config puts it there (by its MAC).
        let addresses = Dictionary(uniqueKeysWithValues: nodes.map { ($0, Loopback.address()) })
        for index in inventory.nodes.indices {
            if let address = addresses[inventory.nodes[index].name.value] { inventory.nodes[index].address.value = IPv4Address(address)! }
        }
        self.inventory = inventory
        renderer = try MachineConfigRenderer(bundle: bundle, inventory: inventory)
        cluster = SimulatedTalosCluster(specs: nodes.map { name in
            var spec = SimulatedNodeSpec(name: name, address: addresses[name]!)
            spec.mac = inventory.node(named: name)?.machine.mac?.value.description
            spec.platform = platform
            spec.timeScale = timeScale
            spec.faults = faults[name] ?? []
            spec.wakesFromPowerOff = wakesFromPowerOff.contains(name)
            return spec
        })
    }

    func node(_ name: String) -> SimulatedTalosNode { cluster.node(name)! }

    func config(_ name: String) throws -> String {
        try renderer.yaml(renderer.target(node: inventory.nodes.first { $0.name.value == name }!))
    }

    var admin: TalosTLS.Mode { get throws { try mode(roles: ["os:admin"]) } }

    func mode(roles: [String]) throws -> TalosTLS.Mode {
        let credentials = try TalosConfig.credentials(bundle: bundle, roles: roles)
        return .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key)
    }

    func client(_ name: String, _ mode: TalosTLS.Mode) throws -> TalosClient {
        var client = try TalosClient(host: node(name).spec.address, mode: mode)
        client.timeout = .seconds(15)  // a hang guard: the whole suite shares two cores
        return client
    }

    /// Powers on, applies each node's config in maintenance and waits until all run configured: a
    /// worker `running`, a control plane `booting` with its services up and etcd waiting for a
    /// bootstrap or a join (where Talos stays until someone bootstraps), or `running` once it has joined.
    func configure(_ names: [String]) async throws {
        for name in names {
            await node(name).powerOn()
            let maintenance = try client(name, .maintenance(spkiPin: nil))
            _ = try await eventually { try await maintenance.version() }
            _ = try await maintenance.applyConfiguration(try config(name))
        }
        for name in names {
            let admin = try client(name, try self.admin)
            _ = try await eventually {
                let status = try await admin.machineStatus()
                if status.stage == .running { return }
                let etcd = status.stage == .booting ? try await admin.etcdServiceState() : nil
                guard etcd != nil else { throw PeerError("\(name) is \(status.stage)") }
            }
        }
    }
}

extension LabFixture {
    /// Three control planes configured, etcd bootstrapped on cp1 and joined by the others; cp1's client.
    func bootstrappedControlPlanes() async throws -> TalosClient {
        try await configure(["cp1", "cp2", "cp3"])
        let cp1 = try client("cp1", try admin)
        _ = try await cp1.bootstrap()
        try await eventually { guard try await cp1.etcdMembers().count == 3 else { throw PeerError("joining") } }
        return cp1
    }
}

/// Retries `body` until it succeeds or `timeout` passes; the last error is rethrown. The timeout only
/// guards against a hang: the whole suite shares two cores, so a node can be slow to answer.
@discardableResult
func eventually<T: Sendable>(timeout: Duration = .seconds(60), _ body: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        do { return try await body() } catch {
            if ContinuousClock.now > deadline { throw error }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
