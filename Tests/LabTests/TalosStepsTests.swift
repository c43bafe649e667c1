import Foundation
import Lab
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps
@testable import TalosKit

/// The Talos step kinds, run by the real executor against simulated nodes: the demo inventory
/// moved onto addresses of this test's own, the lab clock at 0 (instant).
struct TalosLab {
    var inventory: Inventory
    let cluster: SimulatedTalosCluster
    let state = temporaryDirectory()

    /// `router`: the nodes on a /24 of their own (inventory addresses `.11`, `.12`, ... in order),
    /// with the lab router's pool on `.100-.199`, these reservations (node -> host number), and a
    /// scan when `scan`; nil: every node on an address of its own, reserved there.
    /// `timeScale`: the lab's clock (0: instant).
    init(faults: [String: String] = [:], nodes: Set<String>? = nil, router: (reservations: [String: Int], scan: Bool)? = nil,
         timeScale: Double = 0, delays: LabDelays = LabDelays()) throws {
        var (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/demo.yaml")
        if let nodes { inventory.nodes = inventory.nodes.filter { nodes.contains($0.name.value) } }
        let network = router.map { _ in Loopback.network() }
        for index in inventory.nodes.indices {
            inventory.nodes[index].address.value = IPv4Address(network.map { "\($0).\(11 + index)" } ?? Loopback.address())!
        }
        var dhcp = LabDHCP()
        // No scan unless asked: the demo's 127.0.0.0/24 may hold another test's lab.
        inventory.cluster.maintenanceScan = nil
        if let network, let router {
            let here = inventory.cluster.name.location
            inventory.cluster.nodeCIDR.value = IPv4Network("\(network).0/24")!
            inventory.cluster.gateway.value = IPv4Address("\(network).1")!
            inventory.cluster.maintenanceScan = Located(router.scan, at: here)
            dhcp.pool = (Located(IPv4Address("\(network).100")!, at: here), Located(IPv4Address("\(network).199")!, at: here))
            dhcp.reservations = router.reservations.map { .init(node: Located($0.key, at: here), address: Located(IPv4Address("\(network).\($0.value)")!, at: here)) }
        }
        // The cluster endpoint (the VIP the Kubernetes API answers on) moves to an address of its own too.
        let vip = network.map { "\($0).10" } ?? Loopback.address()
        inventory.cluster.vip?.value = IPv4Address(vip)!
        inventory.cluster.endpoint.value = "https://\(vip):6443"
        inventory.lab?.timeScale.value = timeScale
        inventory.lab?.delays = delays
        inventory.lab?.dhcp = dhcp
        inventory.lab?.faults = faults.map { .init(node: Located($0.key, at: inventory.cluster.name.location), kind: Located($0.value, at: inventory.cluster.name.location)) }
        self.inventory = inventory
        cluster = SimulatedTalosCluster(inventory: inventory)
        // The shared bundle, so the secrets step finds one (an RSA-4096 key per test is seconds of CPU).
        try PrivateFile.write(Array(try LabFixture.bundle.get().yaml.utf8), to: "\(state)/secrets.yaml")
    }

    static let playbook = """
        apiVersion: provision/v1
        kind: Playbook
        name: talos
        steps:
          - {id: secrets, uses: talos.secrets}
          - {id: maintenance, uses: talos.await-maintenance, forEach: all, timeout: 60s}
          - {id: apply-config, uses: talos.apply-config, forEach: all, needs: [maintenance, secrets]}
          - {id: configured-cp, uses: talos.await-configured, forEach: role=controlplane, needs: [apply-config], timeout: 60s, with: {before: bootstrap}, optional: true}
          - {id: configured, uses: talos.await-configured, forEach: role=worker, needs: [apply-config], timeout: 60s, optional: true}
          - {id: bootstrap, uses: talos.bootstrap, needs: [configured-cp]}
          - {id: etcd, uses: talos.await-etcd, needs: [bootstrap], timeout: 60s}
          - {id: kubeconfig, uses: talos.kubeconfig, needs: [etcd]}
        """

    /// The playbook without the bootstrap and what follows it.
    static let upToConfigured = playbook.components(separatedBy: "\n")
        .filter { !["talos.bootstrap", "talos.await-etcd", "talos.kubeconfig"].contains(where: $0.contains) }.joined(separator: "\n")

    func run(_ playbookText: String = playbook, services: Services = Services(), sinks: [any EventSink] = [],
             arguments: [String: String] = [:]) async throws -> RunSummary {
        let catalog = StandardCatalog.make()
        let dir = temporaryDirectory()
        try playbookText.write(toFile: "\(dir)/book.yaml", atomically: true, encoding: .utf8)
        let book = try PlaybookParser.load(path: "\(dir)/book.yaml", catalog: catalog)
        let graph = try PlaybookExpander(inventory: inventory).expand(book)
        let redactor = Redactor()
        let credentials = CredentialResolver(environment: [:], baseDirectory: inventory.directory, redactor: redactor)
        // One Talos access per run, as `provision` builds a run's services: one connection per node,
        // and what the run learnt about where nodes are (a scan, a DHCP lease) kept for the run.
        var services = services
        let talos = services[TalosAccess.self] ?? TalosAccess(inventory: inventory, stateDirectory: state, credentials: credentials)
        services[TalosAccess.self] = talos
        defer { talos.close() }
        // And one Kubernetes client per run, shut down at its end (an HTTP client must be).
        let ownsKube = services[KubeAccess.self] == nil
        let kube = services[KubeAccess.self] ?? KubeAccess(stateDirectory: state)
        services[KubeAccess.self] = kube
        let context = StepContext(inventory: inventory, stateDirectory: state, runID: UUID().uuidString,
                                  credentials: credentials, events: EventBus(redactor: redactor, sinks: sinks), arguments: arguments, services: services)
        var options = ExecutorOptions()
        options.retry.maxAttempts = 3
        let journal = try Journal(path: "\(state)/journal.sqlite")
        let summary: RunSummary
        do {
            summary = try await Executor(graph: graph, catalog: catalog, context: context, journal: journal, options: options).run(command: "test", playbook: book.name)
        } catch {
            if ownsKube { await kube.close() }
            throw error
        }
        if ownsKube { await kube.close() }
        return summary
    }

    /// The lab's Kubernetes API at the cluster endpoint (the VIP), on the shared bundle's CA.
    func kubeAPI() async throws -> LabKubeAPI {
        let bundle = try LabFixture.bundle.get()
        guard let endpoint = URL(string: inventory.cluster.endpoint.value), let host = endpoint.host, let port = endpoint.port else {
            throw PeerError("the cluster endpoint \(inventory.cluster.endpoint.value) has no host and port")
        }
        return try await LabKubeAPI(host: host, port: port, caPEM: KubeLab.pem(bundle.k8s.crt), caKeyPEM: KubeLab.pem(bundle.k8s.key),
                                    cluster: cluster, kubernetesVersion: "v1.34.2", timeScale: 0, vip: true)
    }

    func admin(_ node: String) async throws -> TalosClient {
        let bundle = try SecretsBundle.load(path: "\(state)/secrets.yaml")
        let credentials = try TalosConfig.credentials(bundle: bundle, roles: ["os:admin"])
        return try TalosClient(host: inventory.node(named: node)!.address.value.description,
                               mode: .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key))
    }
}

@Suite struct TalosStepsTests {
    @Test func upToKubeconfigThenASecondRunChangesNothing() async throws {
        let lab = try TalosLab()
        await lab.cluster.powerOnAll()
        let first = try await lab.run()
        #expect(first.succeeded, "\(first.errors)")
        #expect(first.outcomes["bootstrap"] == .applied)
        #expect(await lab.cluster.etcd.clusterCount == 1)
        let members = try await lab.admin("cp1").etcdMembers()
        #expect(Set(members.map(\.hostname)) == ["cp1", "cp2", "cp3"])
        let kubeconfig = try String(contentsOfFile: "\(lab.state)/kubeconfig", encoding: .utf8)
        #expect(kubeconfig.contains("admin@demo"))
        #expect(try FileManager.default.attributesOfItem(atPath: "\(lab.state)/kubeconfig")[.posixPermissions] as? Int == 0o600)

        let applyCalls = await lab.cluster.nodes.asyncCount { await $0.calls.filter { ["ApplyConfiguration", "Bootstrap", "Reset"].contains($0.method) }.count }
        let second = try await lab.run()
        #expect(second.succeeded)
        #expect(second.outcomes.values.allSatisfy { $0 == .satisfied }, "\(second.outcomes)")
        let after = await lab.cluster.nodes.asyncCount { await $0.calls.filter { ["ApplyConfiguration", "Bootstrap", "Reset"].contains($0.method) }.count }
        #expect(after == applyCalls, "a converged cluster gets no mutating call")
    }

    @Test func bootstrapIsRefusedWhenAnotherControlPlaneAlreadyHasMembers() async throws {
        let lab = try TalosLab(nodes: ["cp1", "cp2", "cp3"])
        await lab.cluster.powerOnAll()
        let upToConfigured = TalosLab.upToConfigured
        let configured = try await lab.run(upToConfigured)
        #expect(configured.succeeded, "\(configured.errors)")
        // Someone bootstrapped cp2 by hand: the step must see it and not bootstrap cp1 as well.
        #expect(try await lab.admin("cp2").bootstrap() == .bootstrapped)
        let run = try await lab.run()
        #expect(run.succeeded, "\(run.errors)")
        #expect(run.outcomes["bootstrap"] == .satisfied)
        #expect(await lab.cluster.etcd.clusterCount == 1, "no second etcd cluster")
        #expect(await !lab.cluster.node("cp1")!.calls.contains { $0.method == "Bootstrap" })
    }

    /// A control plane whose etcd does not run but whose data directory is not empty belongs to a
    /// cluster bootstrapped before: bootstrapping another node would make a second one. "Cannot
    /// tell" is never "empty": the step lists the directory, as Talos' own Bootstrap checks it.
    @Test func bootstrapIsRefusedWhenAControlPlaneHoldsEtcdData() async throws {
        let lab = try TalosLab(nodes: ["cp1", "cp2", "cp3"])
        await lab.cluster.powerOnAll()
        let configured = try await lab.run(TalosLab.upToConfigured)
        #expect(configured.succeeded, "\(configured.errors)")
        for cp in ["cp1", "cp2", "cp3"] {
            #expect(await lab.cluster.node(cp)!.stage == .booting, "\(cp) waits for the bootstrap, booting")
        }
        await lab.cluster.etcd.destroy(node: "cp2")
        let run = try await lab.run("""
            apiVersion: provision/v1
            kind: Playbook
            name: bootstrap
            steps:
              - {id: secrets, uses: talos.secrets}
              - {id: bootstrap, uses: talos.bootstrap, needs: [secrets]}
            """)
        #expect(!run.succeeded)
        let error = run.errors["bootstrap"] ?? ""
        #expect(error.contains("cp2's etcd data directory is not empty") && error.contains("/var/lib/etcd holds member"), "\(run.errors)")
        #expect(await !lab.cluster.node("cp1")!.calls.contains { $0.method == "Bootstrap" }, "nothing was bootstrapped")
        #expect(await lab.cluster.etcd.clusterCount == 0)
    }

    @Test func usbOnlyDiskSelectorIsRefusedBeforeAnyApply() async throws {
        let lab = try TalosLab(nodes: ["mini01"])
        // The simulated Mac mini has an internal NVMe and a USB stick; pretend the NVMe died.
        let cluster = SimulatedTalosCluster(specs: lab.cluster.nodes.map { node in
            var spec = node.spec
            spec.disks = [SimulatedDisk(path: "/dev/sda", size: 16 << 30, model: "USB DISK 3.0", transport: "usb")]
            return spec
        })
        await cluster.powerOnAll()
        let run = try await lab.run()
        #expect(!run.succeeded)
        #expect(run.errors["maintenance@mini01"]?.contains("install.diskSelector model=APPLE SSD* matches no disk") == true, "\(run.errors)")
        #expect(await !cluster.nodes[0].calls.contains { $0.method == "ApplyConfiguration" })
    }

    /// A 2014 Mac mini: an Apple SSD blade on AHCI (Talos says `ssd`, not `nvme`) is what the shipped
    /// selector picks; the HDD-only model matches nothing, and the refusal offers a selector for
    /// each disk the node could install to.
    @Test func a2014MacMinisSATADisksAreMatchedOrListedWithTheirSelectors() async throws {
        for (disk, installs) in [(SimulatedDisk(path: "/dev/sda", size: 256 << 30, model: "APPLE SSD SM0256G", transport: "sata"), true),
                                 (SimulatedDisk(path: "/dev/sda", size: 500 << 30, model: "HGST HTS545050A7E380", transport: "sata"), false)] {
            let lab = try TalosLab(nodes: ["mini01"])
            var rotating = disk
            rotating.rotational = !installs
            let cluster = SimulatedTalosCluster(specs: lab.cluster.nodes.map { node in
                var spec = node.spec
                spec.disks = [rotating, SimulatedDisk(path: "/dev/sdb", size: 16 << 30, model: "USB DISK 3.0", transport: "usb")]
                return spec
            })
            await cluster.powerOnAll()
            // A worker alone never finishes booting (no control plane's trustd): its config sent is the point.
            let run = try await lab.run(TalosLab.upToConfigured.components(separatedBy: "\n").filter { !$0.contains("talos.await-configured") }.joined(separator: "\n"))
            if installs {
                #expect(run.succeeded && run.outcomes["apply-config@mini01"] == .applied, "the selector matched its SATA SSD: \(run.errors)")
            } else {
                let error = run.errors["maintenance@mini01"] ?? ""
                #expect(error.contains("matches no disk") && error.contains("/dev/sda 536 GB HGST HTS545050A7E380: diskSelector {type: hdd}")
                        && !error.contains("/dev/sdb 17 GB USB DISK 3.0: diskSelector"), "\(error)")
            }
            await cluster.shutdown()
        }
    }

    @Test func resetIsVerifiedAndNeverRepeated() async throws {
        let lab = try TalosLab(nodes: ["cp1", "cp2", "cp3"])
        await lab.cluster.powerOnAll()
        let up = try await lab.run()
        #expect(up.succeeded, "\(up.errors)")
        let reset = """
            apiVersion: provision/v1
            kind: Playbook
            name: reset
            steps:
              - {id: snapshot, uses: talos.etcd-snapshot}
              - {id: reset, uses: talos.reset, forEach: "name=cp2", needs: [snapshot], timeout: 60s}
            """
        let run = try await lab.run(reset)
        #expect(run.succeeded, "\(run.errors)")
        #expect(await lab.cluster.node("cp2")!.stage == .maintenance)
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: "\(lab.state)/snapshots")
        #expect(snapshots.count == 1)
        // Run again: the record says cp2 was reset and it is back, so no second Reset.
        let again = try await lab.run(reset)
        #expect(again.outcomes["reset@cp2"] == .satisfied, "\(again.outcomes)")
        #expect(await lab.cluster.node("cp2")!.calls.filter { $0.method == "Reset" }.count == 1)
        // Configured again (new boot, its config active) before anything ended the record: still the
        // reset that happened, never one that failed.
        #expect(try await lab.run(TalosLab.upToConfigured).succeeded)
        let configured = try await lab.run(reset)
        #expect(configured.outcomes["reset@cp2"] == .satisfied, "\(configured.outcomes) \(configured.errors)")
        #expect(await lab.cluster.node("cp2")!.calls.filter { $0.method == "Reset" }.count == 1)
    }
}

extension Array where Element: Sendable {
    func asyncCount(_ count: (Element) async -> Int) async -> Int {
        var total = 0
        for element in self { total += await count(element) }
        return total
    }
}

extension TalosStepsTests {
    /// Any link document turns Talos' DHCP off; a node whose inventory MAC is on none of its links
    /// would have no address after its config. `await-maintenance` reads its links (maintenance
    /// mode) and refuses, naming the MACs it has, before anything is sent.
    @Test func aMistypedMACIsRefusedBeforeTheConfigIsSent() async throws {
        let lab = try TalosLab(faults: ["mini01": "mac-typo"], nodes: ["mini01"])
        await lab.cluster.powerOnAll()
        let run = try await lab.run()
        #expect(run.refused, "\(run.errors)")
        let error = run.errors["maintenance@mini01"] ?? ""
        #expect(error.contains("a4:83:e7:00:00:61 is on none of its links") && error.contains("enp1s0 a4:83:e7:00:00:60"), "\(error)")
        #expect(await !lab.cluster.nodes[0].calls.contains { $0.method == "ApplyConfiguration" })
    }
}
