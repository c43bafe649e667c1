import Foundation
import NIOHTTP1
import ProvisionCore
import Synchronization

/// The VM settings Talos needs on Proxmox (q35, OVMF with an EFI disk without pre-enrolled keys,
/// cpu host, balloon off, virtio-scsi-pci, virtio NIC with our MAC on the bridge/VLAN, serial
/// console), named and tagged so a re-run finds it.
public struct ProxmoxVMSpec: Sendable {
    public var name: String
    public var cores: Int
    public var memoryMiB: Int
    public var storage: String
    public var diskGiB: Int
    public var mac: String
    public var bridge: String = "vmbr0"
    public var vlan: Int?
    /// The ISO on a CD-ROM, or the disk image imported into scsi0; nil leaves an empty disk (PXE).
    public var media: ProxmoxBootMedia?
    public var tags: [String]

    public init(name: String, cores: Int, memoryMiB: Int, storage: String, diskGiB: Int, mac: String, tags: [String]) {
        self.name = name
        self.cores = cores
        self.memoryMiB = memoryMiB
        self.storage = storage
        self.diskGiB = diskGiB
        self.mac = mac
        self.tags = tags
    }

    func parameters(vmid: Int) -> [(String, String)] {
        var net = "virtio=\(mac.uppercased()),bridge=\(bridge)"
        if let vlan { net += ",tag=\(vlan)" }
        var list: [(String, String)] = [
            ("vmid", "\(vmid)"), ("name", name), ("machine", "q35"), ("bios", "ovmf"),
            ("efidisk0", "\(storage):1,efitype=4m,pre-enrolled-keys=0"), ("cpu", "host"), ("cores", "\(cores)"),
            ("memory", "\(memoryMiB)"), ("balloon", "0"), ("scsihw", "virtio-scsi-pci"),
            ("net0", net), ("serial0", "socket"), ("ostype", "l26"),
            ("agent", media?.agent == true ? "1" : "0"), ("tags", tags.joined(separator: ";")),
        ]
        switch media?.kind {
        case .import?:
            // Size 0 is PVE's required syntax for an import; the disk is grown to diskGiB afterwards.
            list.append(("scsi0", "\(storage):0,import-from=\(media!.volumeID),discard=on,ssd=1"))
            list.append(("boot", "order=scsi0"))
        case .iso?:
            list.append(("scsi0", "\(storage):\(diskGiB),discard=on,ssd=1"))
            list.append(("ide2", "\(media!.volumeID),media=cdrom"))
            list.append(("boot", "order=scsi0;ide2"))
        case nil:
            list.append(("scsi0", "\(storage):\(diskGiB),discard=on,ssd=1"))
            list.append(("boot", "order=scsi0;net0"))
        }
        return list
    }
}

extension ProxmoxClient {
    public struct VM: Sendable, Equatable {
        public var vmid: Int
        public var name: String
        public var status: String
        public var tags: [String]
        /// `create` while PVE creates it (its config holds nothing else yet, so no name), else a lock or nil.
        public var lock: String? = nil
    }

    /// The node's VMs as their configs say now: GET /nodes/{node}/qemu, where qemu-server reads
    /// each config and asks whether it runs. Never /cluster/resources: PVE fills its names and power
    /// states from pvestatd's cache, refreshed every 10 s (pve-manager PVE/API2Tools.pm
    /// extract_vm_stats, PVE/Service/pvestatd.pm), so a VM just created is missing there and a
    /// retry would create it again.
    public func vms() async throws -> [VM] {
        let list = try await call(.GET, "/nodes/\(node)/qemu") as? [[String: Any]] ?? []
        return list.compactMap { item in
            guard let vmid = (item["vmid"] as? Int) ?? (item["vmid"] as? String).flatMap(Int.init) else { return nil }
            let tags = (item["tags"] as? String ?? "").split(whereSeparator: { $0 == ";" || $0 == "," }).map(String.init)
            let lock = (item["lock"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            return VM(vmid: vmid, name: item["name"] as? String ?? "", status: item["status"] as? String ?? "unknown", tags: tags, lock: lock)
        }
    }

    public func vm(named name: String) async throws -> VM? { try await vms().first { $0.name == name } }

    /// The lowest free id in `range`, re-checked with `nextid?vmid=` (which answers 400 when taken).
    public func freeID(in range: ClosedRange<Int>) async throws -> Int {
        let used = Set(try await vms().map(\.vmid))
        for candidate in range where !used.contains(candidate) {
            do {
                _ = try await call(.GET, "/cluster/nextid", [("vmid", "\(candidate)")])
                return candidate
            } catch let error as ProxmoxError where error.status == 400 {
                continue
            }
        }
        throw ProxmoxError(status: 0, message: "no free VM id in \(range.lowerBound)-\(range.upperBound)", parameters: [:], operation: "allocate a VM id")
    }

    /// Creates the VM unless one with its name exists. A VM in `idRange` that PVE is still creating
    /// and that `creating` does not hold (a run killed during its import left it going) may be this
    /// node's: its name appears only when its disks are done, so the create waits for it rather
    /// than make a second VM with the same name and MAC. An id taken between the check and the
    /// create ("already exists") moves on to the next free id; returns the VM id and whether it was created.
    public func ensureVM(_ spec: ProxmoxVMSpec, idRange: ClosedRange<Int>, creating: CreatesInFlight = CreatesInFlight(),
                         patience: Duration = .seconds(1800)) async throws -> (vmid: Int, created: Bool) {
        let deadline = ContinuousClock.now + patience
        while true {
            let vms = try await vms()
            if let existing = vms.first(where: { $0.name == spec.name }) { return (existing.vmid, false) }
            guard let busy = vms.first(where: { idRange.contains($0.vmid) && $0.lock == "create" && !creating.contains($0.vmid) }) else { break }
            guard ContinuousClock.now < deadline else {
                throw ProxmoxError(status: 0, message: "VM \(busy.vmid) has been locked for its create since before this run and still has no name; "
                                   + "if no create is running on \(node) (Tasks), it was left by a crash: remove it (qm unlock \(busy.vmid) && qm destroy \(busy.vmid)) and run again",
                                   parameters: [:], operation: "create \(spec.name)")
            }
            try await Task.sleep(for: pollInterval)
        }
        var attempts = 0
        while true {
            let vmid = try await creating.claim { try await freeID(in: idRange) }
            defer { creating.release(vmid) }
            do {
                try await task(.POST, "/nodes/\(node)/qemu", spec.parameters(vmid: vmid))
                if spec.media?.kind == .import { try await grow(vmid, disk: "scsi0", toGiB: spec.diskGiB) }
                return (vmid, true)
            } catch let error as ProxmoxError where error.alreadyExists && attempts < 5 {
                attempts += 1
                if let existing = try await vm(named: spec.name) { return (existing.vmid, false) }
            }
        }
    }

    public func config(_ vmid: Int) async throws -> [String: String] {
        let object = try await call(.GET, "/nodes/\(node)/qemu/\(vmid)/config") as? [String: Any] ?? [:]
        return object.mapValues { "\($0)" }
    }

    public func status(_ vmid: Int) async throws -> String {
        let object = try await call(.GET, "/nodes/\(node)/qemu/\(vmid)/status/current") as? [String: Any] ?? [:]
        return object["status"] as? String ?? "unknown"
    }

    public func start(_ vmid: Int) async throws {
        guard try await status(vmid) != "running" else { return }
        try await task(.POST, "/nodes/\(node)/qemu/\(vmid)/status/start")
    }

    /// An imported disk has the image's size; grow it to what the inventory asks for.
    func grow(_ vmid: Int, disk: String, toGiB size: Int) async throws {
        let reply = try await call(.PUT, "/nodes/\(node)/qemu/\(vmid)/resize", [("disk", disk), ("size", "\(size)G")])
        if let upid = reply as? String, upid.hasPrefix("UPID:") { try await wait(upid, operation: "resize \(disk) of VM \(vmid)") }
    }

    /// ACPI shutdown; if the guest ignores it for `timeout` seconds (Talos without ACPI handling, a
    /// hung kernel), a hard stop. A VM that is not running is already stopped.
    public func stop(_ vmid: Int, timeout: Int = 60) async throws {
        do {
            try await task(.POST, "/nodes/\(node)/qemu/\(vmid)/status/shutdown", [("timeout", "\(timeout)")])
        } catch let error as ProxmoxError where error.notRunning {
            return
        } catch let error as ProxmoxError where error.message.contains("got timeout") || error.message.contains("VM quit/powerdown failed") {
            // Before qemu-server 8.3.4 a shutdown through a guest agent that does not answer failed
            // with "VM quit/powerdown failed" alone; since then the text adds "got timeout".
            try await task(.POST, "/nodes/\(node)/qemu/\(vmid)/status/stop")
        }
    }

    /// Deletes with purge; a VM already gone counts as deleted.
    public func delete(_ vmid: Int) async throws {
        do {
            try await task(.DELETE, "/nodes/\(node)/qemu/\(vmid)", [("purge", "1"), ("destroy-unreferenced-disks", "1")])
        } catch let error as ProxmoxError where error.notFound {
            return
        }
    }
}

/// The VM ids this process is creating right now: their configs hold only `lock: create` until
/// their disks are done, and a create must tell its own (and its siblings') from one a killed run left.
public final class CreatesInFlight: Sendable {
    private let ids = Mutex<Set<Int>>([])
    /// One id chosen at a time, so two parallel creates never pick the same free id.
    private let choosing = AsyncSemaphore(1)

    public init() {}

    func contains(_ vmid: Int) -> Bool { ids.withLock { $0.contains(vmid) } }

    /// Picks an id with `choose` and holds it until `release`.
    func claim(_ choose: () async throws -> Int) async throws -> Int {
        try await choosing.withSlot {
            let vmid = try await choose()
            ids.withLock { _ = $0.insert(vmid) }
            return vmid
        }
    }

    func release(_ vmid: Int) { ids.withLock { _ = $0.remove(vmid) } }
}
