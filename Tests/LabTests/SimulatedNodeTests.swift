import Foundation
import Lab
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// Our client against our simulator: the lifecycle a real node goes through.
@Suite struct SimulatedNodeTests {
    @Test func applyInstallsRebootsAndComesUpConfigured() async throws {
        let lab = try LabFixture(nodes: ["cp1"], platform: "metal", timeScale: 0.01)
        let node = lab.node("cp1")
        await node.powerOn()
        let maintenance = try lab.client("cp1", .maintenance(spkiPin: nil))
        let version = try await eventually { try await maintenance.version() }
        #expect(version.features.rbac == false)
        #expect(try await maintenance.machineStatus().stage == .maintenance)
        let bootBefore = await node.bootID

        let reply = try await maintenance.applyConfiguration(try lab.config("cp1"))
        // Maintenance resolves AUTO to NO_REBOOT (v1alpha1_server.go); the boot sequence then installs and reboots.
        #expect(reply.mode == .noReboot && reply.modeDetails == "Applied configuration without a reboot", "\(reply)")

        // A new control plane stays booting, etcd waiting, until it is bootstrapped.
        let admin = try lab.client("cp1", try lab.admin)
        try await eventually {
            guard try await admin.etcdServiceState() == "Preparing" else { throw PeerError("services not up") }
        }
        #expect(try await admin.machineStatus().stage == .booting)
        #expect(try await admin.bootstrap() == .bootstrapped, "Bootstrap is accepted while booting")
        try await eventually {
            guard try await admin.machineStatus().stage == .running else { throw PeerError("not running") }
        }
        let bootAfter = try await admin.bootID()
        #expect(bootAfter != bootBefore, "the node rebooted")
        #expect(bootAfter == (await node.bootID))
        #expect(try await admin.version().features.rbac == true)
        #expect(try await admin.hostname() == "cp1")
        let stages = await node.history
        #expect(stages == [.booting, .maintenance, .installing, .rebooting, .booting, .running], "\(stages)")
        // The maintenance identity is gone: a client without a certificate is refused.
        await #expect(throws: TalosError.self) { try await maintenance.version() }
    }

    /// Talos' installer refuses a disk holding anything but an empty GPT unless the config wipes
    /// it; the node comes back to maintenance without its config. Told to wipe, it installs, and
    /// the disk then holds Talos' partitions (META among them), as DiscoveredVolumes shows.
    @Test func theInstallerRefusesADiskThatIsNotEmptyUnlessToldToWipe() async throws {
        let lab = try LabFixture(nodes: ["cp1"], platform: "metal", timeScale: 0.01, faults: ["cp1": [.diskHoldsMacOS]])
        await lab.node("cp1").powerOn()
        let maintenance = try lab.client("cp1", .maintenance(spkiPin: nil))
        _ = try await eventually { try await maintenance.version() }
        let before = try await maintenance.discoveredVolumes()
        #expect(before.contains { $0.devPath == "/dev/vda" && $0.type == "disk" && $0.name == "gpt" }, "\(before)")
        #expect(before.contains { $0.parentDevPath == "/dev/vda" && $0.name == "apfs" }, "\(before)")
        _ = try await maintenance.applyConfiguration(try lab.config("cp1"))
        try await eventually {
            guard await lab.node("cp1").history.filter({ $0 == .maintenance }).count == 2 else { throw PeerError("not back in maintenance") }
        }
        #expect(await lab.node("cp1").configured == false, "the config was never written to a disk")
        // A new boot, a new maintenance identity: a new client.
        let again = try lab.client("cp1", .maintenance(spkiPin: nil))
        #expect(try await eventually { try await again.discoveredVolumes() }.contains { $0.name == "apfs" }, "nothing was touched")

        let wipe = try lab.config("cp1").replacingOccurrences(of: "wipe: false", with: "wipe: true")
        #expect(wipe.contains("wipe: true"))
        _ = try await again.applyConfiguration(wipe)
        let admin = try lab.client("cp1", try lab.admin)
        try await eventually { guard try await admin.etcdServiceState() == "Preparing" else { throw PeerError("not installed yet") } }
        let after = try await admin.discoveredVolumes()
        #expect(!after.contains { $0.name == "apfs" } && after.contains { $0.partitionLabel == "META" }, "\(after)")
    }

    @Test func bootstrapOnceThenAlreadyExistsAndOthersJoin() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2", "cp3"])
        try await lab.configure(["cp1", "cp2", "cp3"])
        let cp1 = try lab.client("cp1", try lab.admin)
        #expect(try await cp1.bootstrap() == .bootstrapped)
        #expect(try await cp1.bootstrap() == .alreadyBootstrapped)
        try await eventually {
            guard try await cp1.etcdMembers().count == 3 else { throw PeerError("not joined yet") }
        }
        #expect(try await lab.client("cp3", try lab.admin).bootstrap() == .alreadyBootstrapped, "a joined member has etcd data")
        #expect(await lab.cluster.etcd.clusterCount == 1)
        let hostnames = Set(try await cp1.etcdMembers().map(\.hostname))
        #expect(hostnames == ["cp1", "cp2", "cp3"])
    }

    @Test func resetLeavesEtcdAndReturnsToMaintenanceWithANewBootID() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2", "cp3"])
        let cp1 = try await lab.bootstrappedControlPlanes()

        let cp2 = try lab.client("cp2", try lab.admin)
        let bootBefore = try await cp2.bootID()
        let actor = try await cp2.resetSystemPartitions()
        #expect(!actor.isEmpty)
        let maintenance = try lab.client("cp2", .maintenance(spkiPin: nil))
        try await eventually {
            guard try await maintenance.machineStatus().stage == .maintenance else { throw PeerError("resetting") }
        }
        #expect(await lab.node("cp2").bootID != bootBefore)
        #expect(Set(try await cp1.etcdMembers().map(\.hostname)) == ["cp1", "cp3"], "graceful reset removed its own member")
        let probe = await TalosProbe(host: lab.node("cp2").spec.address, credentials: try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"])).run()
        #expect(probe.mode == .maintenance)
    }

    @Test func kubeconfigIsTalosLenientArchiveWithAnAdminCertificate() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let kubeconfig = try await lab.client("cp1", try lab.admin).kubeconfig()
        #expect(kubeconfig.contains("current-context: admin@demo"))
        #expect(kubeconfig.contains("client-certificate-data:"))
        // The same bytes, read by Python's tarfile (an independent tar reader), in the Python client test.
        await #expect(throws: TalosError.self) { try await lab.client("cp1", try lab.mode(roles: ["os:reader"])).kubeconfig() }
    }

    @Test func etcdSnapshotIsWrittenPrivately() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let admin = try lab.client("cp1", try lab.admin)
        _ = try await admin.bootstrap()
        let file = URL(fileURLWithPath: temporaryDirectory()).appendingPathComponent("etcd.snapshot")
        let size = try await eventually { try await admin.etcdSnapshot(to: file) }
        #expect(size > 0 && size % 512 == 32, "etcd's shape: bbolt pages and the appended SHA-256 (\(size) bytes)")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))
        // Checked independently: the last 32 bytes are the SHA-256 of the rest.
        let check = try await Subprocess.run(["python3", "-c", "import hashlib,sys; d=open(sys.argv[1],'rb').read(); print(hashlib.sha256(d[:-32]).digest()==d[-32:])", file.path])
        #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "True", "\(check.stdout)\(check.stderr)")
    }
}

@Suite struct FanOutTests {
    /// apid's `nodes` routing: per-node replies, a failed node reported in its own metadata while
    /// the call succeeds; our client turns that into one result per node.
    @Test func versionThroughOneEndpointForSeveralNodes() async throws {
        let lab = try LabFixture(nodes: ["cp1", "cp2", "cp3"])
        try await lab.configure(["cp1", "cp2"])
        await lab.node("cp3").powerOff()
        let addresses = ["cp1", "cp2", "cp3"].map { lab.node($0).spec.address }
        let results = try await lab.client("cp1", try lab.admin).versions(nodes: addresses)
        #expect(results.count == 3)
        #expect((try? results[addresses[0]]?.get().version.tag) == "v1.13.0")
        #expect((try? results[addresses[1]]?.get().version.tag) == "v1.13.0")
        guard case let .failure(error)? = results[addresses[2]] else { Issue.record("cp3 should have failed: \(results)"); return }
        #expect(error.isTransient, "Unavailable in metadata.status maps to unreachable: \(error)")
        #expect("\(error)".contains("connection refused"))
    }
}
