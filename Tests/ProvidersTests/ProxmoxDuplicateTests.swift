import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import Providers

/// PVE lists VM names in /cluster/resources from pvestatd's cache, refreshed every 10 s, and a VM
/// being created has no name anywhere until its disks are done (its config holds only
/// `lock: create`). fakepve answers both at once; fakepve_serve.py's --pvestatd-secs and
/// --create-secs make it answer as PVE does (pvestatd's cycle set to a minute here, so that a loaded
/// machine's slowness never straddles one). There, a retried start and a create interrupted during
/// its import each leave exactly one VM; the lookup the provider used before (/cluster/resources by
/// name) is shown not to see the VM it just made.
@Suite struct ProxmoxDuplicateTests {
    func client(_ pve: FakePVE) -> ProxmoxClient {
        var client = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint, tokenID: pve.tokenID, secret: pve.secret, node: "pve1")
        client.pollInterval = .milliseconds(20)
        return client
    }

    func spec() -> ProxmoxVMSpec {
        ProxmoxVMSpec(name: "cp1", cores: 2, memoryMiB: 2048, storage: "local-lvm", diskGiB: 16, mac: "bc:24:11:00:00:11", tags: ["talos", "demo", "controlplane"])
    }

    /// What the provider's old lookup saw: /cluster/resources, by name.
    func cachedNames(_ api: ProxmoxClient) async throws -> [String] {
        (try await api.call(.GET, "/cluster/resources", [("type", "vm")]) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    @Test(.timeLimit(.minutes(2))) func aStartThatFailsAndIsRetriedLeavesOneVM() async throws {
        let fault = #"[{"method": "POST", "suffix": "/status/start", "error": "start failed: QEMU exited with code 1", "times": 1}]"#
        let pve = try await FakePVE(faults: fault, arguments: ["--pvestatd-secs", "60"])
        defer { Task { await pve.stop() } }
        let api = client(pve), creating = CreatesInFlight()
        let (vmid, created) = try await api.ensureVM(spec(), idRange: 9000...9099, creating: creating)
        #expect(created)
        #expect(try await !cachedNames(api).contains("cp1"), "PVE's cached listing does not name it yet: the old lookup would create a second cp1")
        await #expect(throws: ProxmoxError.self) { try await api.start(vmid) }
        // The executor's retry runs the whole ensure again.
        let (again, createdAgain) = try await api.ensureVM(spec(), idRange: 9000...9099, creating: creating)
        try await api.start(again)
        #expect(!createdAgain && again == vmid)
        #expect(try await api.vms().filter { $0.name == "cp1" }.count == 1)
        #expect(try await api.vms().count == 1)
    }

    @Test(.timeLimit(.minutes(2))) func aCreateInterruptedDuringItsImportAndRunAgainLeavesOneVM() async throws {
        // A create takes 200 PVE seconds (an import), 10 s here.
        let pve = try await FakePVE(arguments: ["--time-scale", "0.05", "--create-secs", "200", "--pvestatd-secs", "60"])
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let first = Task { try await api.ensureVM(spec(), idRange: 9000...9099, creating: CreatesInFlight()) }
        let deadline = ContinuousClock.now + .seconds(20)
        while try await !api.vms().contains(where: { $0.lock == "create" }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        first.cancel()  // Ctrl-C: PVE's worker goes on with the import.
        let during = try await api.vms()
        #expect(during.count == 1 && during[0].lock == "create" && during[0].name == "VM \(during[0].vmid)", "nameless while it is created: \(during)")
        let cached = try await cachedNames(api), found = try await api.vm(named: "cp1")
        #expect(!cached.contains("cp1") && found == nil, "no lookup by name finds it yet")
        // A new run, knowing nothing of the first: it waits for the create in its range, then finds cp1.
        let (vmid, created) = try await api.ensureVM(spec(), idRange: 9000...9099, creating: CreatesInFlight())
        #expect(!created && vmid == during[0].vmid)
        let after = try await api.vms()
        #expect(after.count == 1 && after[0].name == "cp1", "\(after)")
    }
}
