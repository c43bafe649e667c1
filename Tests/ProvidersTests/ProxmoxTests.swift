import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import Providers

/// Our Proxmox client against fakepve: PVE's API schema, task model and error texts.
@Suite struct ProxmoxTests {
    func client(_ pve: FakePVE, fingerprint: String? = nil, secret: String? = nil) -> ProxmoxClient {
        var client = ProxmoxClient(host: pve.host, fingerprint: fingerprint ?? pve.fingerprint, tokenID: pve.tokenID,
                                   secret: secret ?? pve.secret, node: "pve1")
        client.pollInterval = .milliseconds(20)
        return client
    }

    func spec(_ index: Int) -> ProxmoxVMSpec {
        var spec = ProxmoxVMSpec(name: "cp\(index)", cores: 2, memoryMiB: 4096, storage: "local-lvm", diskGiB: 32,
                                 mac: "bc:24:11:00:00:1\(index)", tags: ["talos", "demo", "controlplane"])
        spec.vlan = 30
        return spec
    }

    @Test func threeVMsConcurrentlyThenARerunCreatesNothing() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let created = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for index in 1...3 { group.addTask { try await api.ensureVM(spec(index), idRange: 1000...1099) } }
            var results: [(Int, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(created.allSatisfy { $0.1 })
        #expect(Set(created.map(\.0)).count == 3, "three distinct ids: \(created)")
        #expect(created.allSatisfy { (1000...1099).contains($0.0) })

        let again = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for index in 1...3 { group.addTask { try await api.ensureVM(spec(index), idRange: 1000...1099) } }
            var results: [(Int, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(again.allSatisfy { !$0.1 }, "a re-run creates nothing")
        #expect(try await api.vms().count == 3)

        let vmid = try #require(try await api.vm(named: "cp1")).vmid
        let config = try await api.config(vmid)
        #expect(config["machine"] == "q35")
        #expect(config["bios"] == "ovmf")
        #expect(config["cpu"] == "host")
        #expect(config["balloon"] == "0")
        #expect(config["scsihw"] == "virtio-scsi-pci")
        #expect(config["cores"] == "2")
        #expect(config["memory"] == "4096")
        #expect(config["net0"]?.contains("BC:24:11:00:00:11") == true, "\(config["net0"] ?? "")")
        #expect(config["net0"]?.contains("tag=30") == true)
        #expect(config["efidisk0"]?.contains("pre-enrolled-keys=0") == true)

        try await api.start(vmid)
        #expect(try await api.status(vmid) == "running")
        try await api.start(vmid)
        try await api.stop(vmid)
        #expect(try await api.status(vmid) == "stopped")
        try await api.stop(vmid)
        try await api.delete(vmid)
        try await api.delete(vmid)
        #expect(try await api.vm(named: "cp1") == nil)
    }

    @Test func aCertificateThatIsNotThePinnedOneIsRefused() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        let wrong = String(repeating: "AB:", count: 31) + "AB"
        do {
            _ = try await client(pve, fingerprint: wrong).vms()
            Issue.record("an unpinned certificate was accepted")
        } catch let error as StepError {
            guard case let .refused(message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains(pve.fingerprint), "names the certificate it saw")
        }
    }

    @Test func wrongTokenSecretIsAnAuthenticationError() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        do {
            _ = try await client(pve, secret: "not-the-secret").vms()
            Issue.record("a wrong secret was accepted")
        } catch let error as ProxmoxError {
            #expect(error.status == 401)
            #expect(!error.isTransient)
            #expect(!"\(error)".contains("not-the-secret"))
        }
    }

    @Test func faultsEndInTheRightRetryOrError() async throws {
        let faults = """
            [{"method": "POST", "suffix": "/nodes/pve1/qemu", "status": 500, "message": "unable to create VM 1000 - VM 1000 already exists on node 'pve1'", "times": 1},
             {"method": "POST", "suffix": "/status/start", "error": "config_lock_timeout", "times": 1},
             {"method": "POST", "suffix": "/status/shutdown", "status": 500, "message": "VM 1000 not running", "times": 1}]
            """
        let pve = try await FakePVE(faults: faults)
        defer { Task { await pve.stop() } }
        let api = client(pve)
        // "already exists" on create (the id was taken between the check and the create): a fresh id is
        // allocated and re-checked, and exactly one VM results.
        let (vmid, created) = try await api.ensureVM(spec(1), idRange: 1000...1099)
        #expect(created)
        #expect(try await api.vms().filter { $0.name == "cp1" }.map(\.vmid) == [vmid])
        // A held config lock is transient: the executor retries it, and the retry works.
        do {
            try await api.start(vmid)
            Issue.record("the lock fault did not fire")
        } catch let error as ProxmoxError {
            #expect(error.isTransient, "\(error)")
        }
        try await api.start(vmid)
        #expect(try await api.status(vmid) == "running")
        // Shutting down a VM that is not running is not an error for a stop.
        try await api.stop(vmid)
        // A start task that ends in TASK ERROR is reported with its text.
        let failing = try await FakePVE(faults: """
            [{"method": "POST", "suffix": "/status/start", "error": "qemu_exited_code"}]
            """)
        defer { Task { await failing.stop() } }
        let other = client(failing)
        let (id, _) = try await other.ensureVM(spec(2), idRange: 1000...1099)
        do {
            try await other.start(id)
            Issue.record("the failing start task succeeded")
        } catch let error as ProxmoxError {
            #expect("\(error)".contains("QEMU exited with code 1"), "\(error)")
        }
    }
}

/// Which PVE answers are worth a retry: its own texts decide, whatever the HTTP status.
@Suite struct ProxmoxErrorClassTests {
    func error(_ status: Int, _ message: String, _ parameters: [String: String] = [:]) -> ProxmoxError {
        ProxmoxError(status: status, message: message, parameters: parameters, operation: "test")
    }

    @Test func configurationErrorsAreNeverRetriedEvenAsHTTP500() {
        #expect(!error(500, "storage 'local' is not configured for content-type 'import'\n").isTransient)
        #expect(!error(400, "Parameter verification failed.", ["memory": "value must have a minimum value of 16"]).isTransient)
        #expect(!error(500, "unable to parse volume ID 'x'").isTransient)
        #expect(!error(500, "not enough space on storage 'local-lvm'").isTransient)
        #expect(!error(500, "VM 9001 already exists").isTransient && !error(500, "Configuration file 'x' does not exist").isTransient)
    }

    @Test func locksTimeoutsAndUnknownServerErrorsAreRetried() {
        #expect(error(500, "can't lock file '/var/lock/qemu-server/lock-9001.conf' - got timeout").isTransient)
        #expect(error(500, "VM 9001 is locked (create)").isTransient)
        #expect(error(0, "connection reset").isTransient)
        #expect(error(503, "service unavailable").isTransient)
        #expect(!error(401, "authentication failure").isTransient)
    }
}
