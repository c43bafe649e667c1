import Foundation
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps

@Suite struct CatalogTests {
    @Test(arguments: ["up", "safe-reset", "gpu-up", "gpu-down", "gpu-sweep", "machines-up", "machines-down"])
    func shippedPlaybooksParseAgainstTheCatalog(_ name: String) throws {
        let playbook = try PlaybookParser.load(path: "\(repositoryRoot)/playbooks/\(name).yaml", catalog: StandardCatalog.make())
        #expect(!playbook.steps.isEmpty)
    }

    @Test func upPlaybookOrdersBootstrapAfterControlPlanesAndCiliumAfterWorkers() throws {
        let (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/homelab.yaml")
        let playbook = try PlaybookParser.load(path: "\(repositoryRoot)/playbooks/up.yaml", catalog: StandardCatalog.make())
        let graph = try PlaybookExpander(inventory: inventory).expand(playbook)
        #expect(Set(graph["bootstrap"]?.dependencies ?? []) == ["configured-cp@cp1", "configured-cp@cp2", "configured-cp@cp3"])
        let ciliumNeeds = Set(graph["cilium"]?.dependencies ?? [])
        #expect(ciliumNeeds.isSuperset(of: ["kubeconfig", "configured-worker@mini01", "configured-worker@unraid-w1"]))
        #expect(graph["apply-config@mini02"]?.dependencies.contains("secrets") == true)
    }

    /// `inOrder`: the upgrade's control planes go one after another in inventory order, and the
    /// first that fails stops the rest (they depend on it); workers only wait for all of them.
    @Test func upgradeControlPlanesGoInInventoryOrder() throws {
        let (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/homelab.yaml")
        let playbook = try PlaybookParser.load(path: "\(repositoryRoot)/playbooks/upgrade.yaml", catalog: StandardCatalog.make())
        let graph = try PlaybookExpander(inventory: inventory).expand(playbook)
        #expect(Set(graph["upgrade-cp@cp1"]?.dependencies ?? []) == ["confirm"])
        #expect(Set(graph["upgrade-cp@cp2"]?.dependencies ?? []) == ["confirm", "upgrade-cp@cp1"])
        #expect(Set(graph["upgrade-cp@cp3"]?.dependencies ?? []) == ["confirm", "upgrade-cp@cp2"])
        #expect(graph["upgrade-worker@mini02"]?.dependencies.contains("upgrade-worker@mini01") == false, "workers are not chained")
    }

    @Test func implementedKindsAreRegistered() {
        let catalog = StandardCatalog.make()
        #expect(catalog.implemented.keys.sorted() == ["backup.fetch", "backup.prune", "backup.take", "cluster.orphans", "confirm", "etcd.restore-check", "gpu.await-ready", "gpu.drain", "gpu.launch", "gpu.remove-nodes", "gpu.sweep", "gpu.terminate", "kube.cilium", "kube.cordon", "kube.delete-node", "kube.foundation", "kube.uncordon", "kube.upgrade", "kube.verify", "local.exec", "machine.delete", "machine.ensure", "machine.preflight", "restore.finish", "talos.apply-config", "talos.await-configured", "talos.await-etcd", "talos.await-maintenance", "talos.bootstrap", "talos.etcd-recover", "talos.etcd-reseed", "talos.etcd-snapshot", "talos.etcd-wipe", "talos.identity-check", "talos.kubeconfig", "talos.leave", "talos.quorum-check", "talos.reboot", "talos.removal-check", "talos.reset", "talos.secrets", "talos.upgrade"])
        #expect(catalog.declared.count == catalog.implemented.count, "every declared kind is built")
    }
}

@Suite struct LocalExecTests {
    func context(_ dir: String) throws -> StepContext {
        let (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/Tests/Fixtures/inventories/base.yaml")
        let redactor = Redactor()
        return StepContext(inventory: inventory, stateDirectory: dir, runID: "r",
                           credentials: CredentialResolver(environment: [:], baseDirectory: dir, redactor: redactor),
                           events: EventBus(redactor: redactor, sinks: []))
    }

    func step(_ yaml: String) throws -> StepInstance {
        let node = try YAMLLoader().load(text: yaml, file: "with")
        return StepInstance(id: "x", stepID: "x", kind: "local.exec", node: nil, parameters: StepParameters(node), dependencies: [],
                            timeout: nil, retries: nil, inputsDigest: "", location: node.location)
    }

    @Test func observesCreatesPathRelativeToTheInventory() async throws {
        let dir = NSTemporaryDirectory() + "le-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ctx = try context(dir)
        let instance = try step("run: [mkdir, \(dir)/made]\ncreates: \(dir)/made\n")
        #expect(try await LocalExec().observe(instance, context: ctx) == .pending("\(dir)/made does not exist"))
        _ = try await LocalExec().apply(instance, context: ctx)
        #expect(try await LocalExec().observe(instance, context: ctx) == .satisfied([:]))
        let relative = try step("run: [true]\ncreates: ../images/vm.yaml\n")
        #expect(try await LocalExec().observe(relative, context: ctx) == .satisfied([:]))
    }

    @Test func failureReportsStatusAndOutputTail() async throws {
        let ctx = try context(NSTemporaryDirectory())
        let error = await #expect(throws: StepError.self) {
            _ = try await LocalExec().apply(try step("run: \"echo first; echo boom >&2; exit 7\"\n"), context: ctx)
        }
        #expect(error?.description.contains("status 7") == true)
        #expect(error?.description.contains("boom") == true)
    }

    @Test func cancellationStopsTheCommandPromptly() async throws {
        let dir = NSTemporaryDirectory() + "le-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ctx = try context(dir)
        let instance = try step("run: \"sleep 30; touch \(dir)/late\"\n")
        let task = Task { try await LocalExec().apply(instance, context: ctx) }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        task.cancel()
        _ = await task.result
        // The command would run 30 s; a loaded 2-core machine can delay the kill by seconds.
        #expect(ContinuousClock.now - started < .seconds(15))
        try await Task.sleep(for: .milliseconds(300))
        #expect(!FileManager.default.fileExists(atPath: dir + "/late"))
    }

    @Test func outputIsReturnedAsTheLastLine() async throws {
        let ctx = try context(NSTemporaryDirectory())
        let outputs = try await LocalExec().apply(try step("run: [printf, \"a\\\\nlast\\\\n\"]\n"), context: ctx)
        #expect(outputs["stdout"] == "last")
    }
}
