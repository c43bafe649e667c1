import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import Providers

/// Sign-in, boot media, guest agent and shutdown against fakepve: the parts of the Proxmox client a
/// first `machines up` on a real PVE depends on.
@Suite struct ProxmoxBootTests {
    func client(_ pve: FakePVE, credentials: ProxmoxCredentials? = nil) -> ProxmoxClient {
        var client = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint,
                                   credentials: credentials ?? .token(id: pve.tokenID, secret: pve.secret), node: "pve1")
        client.pollInterval = .milliseconds(20)
        return client
    }

    func spec(_ name: String, mac: String = "bc:24:11:00:00:31", media: ProxmoxBootMedia? = nil) -> ProxmoxVMSpec {
        var spec = ProxmoxVMSpec(name: name, cores: 2, memoryMiB: 2048, storage: "local-lvm", diskGiB: 32, mac: mac, tags: ["talos"])
        spec.media = media
        return spec
    }

    func tasks(_ api: ProxmoxClient, type: String) async throws -> [[String: Any]] {
        let list = try await api.call(.GET, "/nodes/pve1/tasks", [("limit", "500")]) as? [[String: Any]] ?? []
        return list.filter { $0["type"] as? String == type }
    }

    @Test func ticketSignInCarriesCSRFOnWritesAndAWrongPasswordIsRefused() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        let api = client(pve, credentials: .password(user: "root@pam", password: pve.password))
        let (vmid, created) = try await api.ensureVM(spec("ticket"), idRange: 2000...2099)
        #expect(created, "a POST with the ticket and its CSRF token creates the VM")
        try await api.start(vmid)
        #expect(try await api.status(vmid) == "running")

        let wrong = client(pve, credentials: .password(user: "root@pam", password: "not-the-password"))
        do {
            _ = try await wrong.vms()
            Issue.record("a wrong password was accepted")
        } catch let error as ProxmoxError {
            #expect(error.status == 401)
            #expect(!error.isTransient)
            #expect(!"\(error)".contains("not-the-password"), "the password never reaches an error text")
        }
    }

    @Test func theNocloudImageIsDownloadedOnceAndImportedIntoTheDisk() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let media = ProxmoxBootMedia(kind: .import, url: "https://factory.talos.dev/image/abc/v1.13.2/nocloud-amd64.qcow2",
                                     filename: "talos-v1.13.2-abc-nocloud-amd64.qcow2", storage: "local", agent: true)
        // A default `local` storage holds no imports: the error says how to fix it.
        do {
            try await api.ensureMedia(media)
            Issue.record("a storage without the import content type took the download")
        } catch let error as ProxmoxError {
            #expect("\(error)".contains("enable that content type"), "\(error)")
            #expect(!error.isTransient && error.isConfiguration, "configuration: reported at once, never retried (HTTP \(error.status))")
        }
        _ = try await api.call(.PUT, "/storage/local", [("content", "iso,vztmpl,backup,import")])

        let cache = SingleFlight<Bool>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { _ = try await cache.run(media.volumeID) { try await api.ensureMedia(media) } } }
            try await group.waitForAll()
        }
        #expect(try await api.ensureMedia(media) == false, "already on the storage: no second download")
        #expect(try await tasks(api, type: "download").count == 1, "three VMs needing one image download it once")
        #expect(try await api.volumes(storage: "local", content: "import").contains(media.volumeID))

        let (vmid, _) = try await api.ensureVM(spec("imported", media: media), idRange: 2000...2099)
        let config = try await api.config(vmid)
        #expect(config["scsi0"]?.hasPrefix("local-lvm:") == true, "\(config)")
        #expect(config["agent"] == "1", "the schematic has the guest agent")
        #expect(config["boot"] == "order=scsi0")
        #expect(config["ide2"] == nil, "an imported disk needs no CD-ROM")
        #expect(try await tasks(api, type: "qmcreate").count == 1)
    }

    @Test func theISOIsAttachedAsACDROMAfterTheDisk() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let media = ProxmoxBootMedia(kind: .iso, url: "https://factory.talos.dev/image/abc/v1.13.2/metal-amd64.iso",
                                     filename: "talos-v1.13.2-abc-metal-amd64.iso", storage: "local", agent: false)
        #expect(try await api.ensureMedia(media))
        let (vmid, _) = try await api.ensureVM(spec("iso", media: media), idRange: 2000...2099)
        let config = try await api.config(vmid)
        #expect(config["ide2"]?.hasPrefix("local:iso/talos-v1.13.2-abc-metal-amd64.iso") == true, "\(config)")
        #expect(config["ide2"]?.contains("media=cdrom") == true)
        #expect(config["boot"] == "order=scsi0;ide2", "the installed disk boots first once Talos is on it")
        #expect(config["agent"] == "0")
    }

    @Test func theGuestAgentReportsTheAddressOfTheInventoryNIC() async throws {
        // A running agent whose guest has lo and eth0 (MAC bc:24:11:00:00:01, a loopback-range address
        // standing in for the LAN one).
        let pve = try await FakePVE(guest: #"{"agent": {"interfaces": [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]}, {"name": "eth0", "hardware-address": "bc:24:11:00:00:01", "ip-addresses": [{"ip-address": "127.31.0.10", "ip-address-type": "ipv4", "prefix": 24}]}]}}"#)
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let (vmid, _) = try await api.ensureVM(spec("agent", mac: "bc:24:11:00:00:01"), idRange: 2000...2099)
        #expect(try await api.agentAddress(vmid, mac: "bc:24:11:00:00:01") == nil, "a stopped VM has no agent: fall back")
        try await api.start(vmid)
        #expect(try await api.agentAddress(vmid, mac: "BC:24:11:00:00:01")?.description == "127.31.0.10", "the inventory NIC's address, not lo's")
        #expect(try await api.agentAddress(vmid, mac: "bc:24:11:00:00:99") == nil, "only the inventory's NIC counts")
    }

    @Test func aGuestThatIgnoresACPIIsHardStoppedAfterTheTimeout() async throws {
        let pve = try await FakePVE(guest: #"{"shutdown_secs": 600}"#)
        defer { Task { await pve.stop() } }
        let api = client(pve)
        let (vmid, _) = try await api.ensureVM(spec("slow"), idRange: 2000...2099)
        try await api.start(vmid)
        try await api.stop(vmid, timeout: 30)
        #expect(try await api.status(vmid) == "stopped")
        #expect(try await tasks(api, type: "qmshutdown").count == 1, "ACPI first")
        #expect(try await tasks(api, type: "qmstop").count == 1, "then a hard stop")
        try await api.delete(vmid)
        #expect(try await api.vm(named: "slow") == nil)
    }
}
