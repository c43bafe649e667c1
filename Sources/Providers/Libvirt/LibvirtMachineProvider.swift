import Foundation
import ProvisionCore
import Synchronization

/// Inventory nodes as libvirt domains (Unraid, or the lab's test driver): a disk volume in the
/// provider's storage pool (blank for the metal ISO, else made from the Talos disk image), the Talos
/// domain XML with its boot media, started. One connection per provider, shared by every call.
public final class LibvirtMachineProvider: MachineProvider {
    /// A node's boot media from its image class (nil: a blank disk and no medium, which boots nothing).
    public typealias MediaResolver = @Sendable (NodeSpec) throws -> LibvirtBootMedia?
    let provider: ProviderSpec
    let connection: LibvirtConnection
    /// How long an ACPI shutdown may take before the domain is powered off.
    let shutdownTimeout: Duration
    /// The lab's test-driver file, written after every change so the hypervisor outlives the process.
    let persisted: TestDriverState?
    /// Creates at once on this host (`maxParallel`, default 2).
    let creates: AsyncSemaphore
    let mediaFor: MediaResolver?
    /// One download and upload per medium, however many VMs need it.
    let media = SingleFlight<StoredMedia>()

    /// A medium in the pool: its path and size.
    struct StoredMedia: Sendable {
        var path: String
        var bytes: Int64
    }
    /// One save at a time, each reading the hypervisor as it is then: two parallel creates never
    /// write an older picture over a newer one.
    private let saving = Mutex(())
    /// Changes counted and the count the last save covered: a caller whose change a later save
    /// already wrote returns without writing the file again (203 creates wrote it 203 times).
    private let saves = Mutex((changes: 0, saved: 0))

    /// The MACs of the VMs made here (nil: not kept), so one whose mark Unraid's form dropped is still found.
    let made: MadeDomains?

    public init(provider: ProviderSpec, shutdownTimeout: Duration = .seconds(60), persisted: TestDriverState? = nil, made: MadeDomains? = nil,
                media: MediaResolver? = nil) throws {
        self.provider = provider
        self.made = made
        mediaFor = media
        self.shutdownTimeout = shutdownTimeout
        self.persisted = persisted
        creates = AsyncSemaphore(provider.setting("maxParallel").flatMap { Int($0) } ?? 2)
        connection = try LibvirtConnection(uri: try persisted?.prepare() ?? provider.endpoint?.value ?? provider.setting("uri") ?? "")
        try persisted?.restoreAutostart(connection)
    }

    /// Saves the lab's hypervisor state after a change, even a partial one (a define whose start failed).
    func saveState() {
        guard let persisted else { return }
        let mine = saves.withLock { $0.changes += 1; return $0.changes }
        saving.withLock { _ in
            guard saves.withLock({ $0.saved < mine }) else { return }
            let covered = saves.withLock { $0.changes }
            do {
                try persisted.save(connection)
                saves.withLock { $0.saved = covered }
            } catch {
                FileHandle.standardError.write(Data("lab: cannot save the simulated hypervisor to \(persisted.path): \(error)\n".utf8))
            }
        }
    }

    func name(_ node: NodeSpec) -> String { node.machine.id?.value ?? node.name.value }

    public func observe(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        let name = name(node)
        guard let state = try connection.state(of: name) else { return MachineState(power: .absent) }
        let power: MachineState.Power = state == .running ? .running : (state == .shutOff || state == .crashed ? .stopped : .unknown)
        let disk = try connection.volumeCapacity(pool: pool, name: "\(name).raw")
        let shape = Self.shape(try connection.xml(of: name), disk: disk)
        let reported = power == .running ? connection.reportedAddress(of: name, macs: shape.macs, in: inventory.cluster.nodeCIDR.value) : nil
        return MachineState(power: power, id: name, address: reported ?? node.address.value, shape: shape, autostart: try connection.autostart(of: name))
    }

    /// vCPUs, memory and MACs from the domain's XML (libvirt writes memory in KiB unless told a unit).
    static func shape(_ xml: String, disk: Int64?) -> MachineShape {
        func element(_ tag: String) -> (attributes: Substring, text: String)? {
            guard let open = xml.range(of: "<\(tag)"), let end = xml.range(of: ">", range: open.upperBound..<xml.endIndex),
                  let close = xml.range(of: "</\(tag)>", range: end.upperBound..<xml.endIndex) else { return nil }
            return (xml[open.upperBound..<end.lowerBound], String(xml[end.upperBound..<close.lowerBound]))
        }
        let cpus = element("vcpu").flatMap { Int($0.text.trimmingCharacters(in: .whitespaces)) }
        var memory: Int64?
        if let (attributes, text) = element("memory"), let amount = Int64(text.trimmingCharacters(in: .whitespaces)) {
            let unit = attributes.range(of: "unit='").map { attributes[$0.upperBound...].prefix { $0 != "'" } } ?? "KiB"
            let scale: Int64 = ["b": 1, "bytes": 1, "KiB": 1 << 10, "k": 1 << 10, "MiB": 1 << 20, "M": 1 << 20, "GiB": 1 << 30, "G": 1 << 30][String(unit)] ?? 1 << 10
            memory = amount * scale
        }
        var macs: [String] = []
        var rest = Substring(xml)
        while let found = rest.range(of: "<mac address='") {
            macs.append(String(rest[found.upperBound...].prefix { $0 != "'" }))
            rest = rest[found.upperBound...]
        }
        return MachineShape(cpus: cpus, memoryBytes: memory, diskBytes: disk, macs: macs)
    }

    public func ensureRunning(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        let name = name(node)
        var changed = false
        // Saved when something changed (a converged run of 200 VMs wrote the file 200 times).
        defer { if changed { saveState() } }
        if try connection.state(of: name) == nil {
            guard let mac = node.machine.mac?.value.description else {
                throw StepError.permanent("\(node.name.value) needs machine.mac for a libvirt VM (its address is found by MAC)")
            }
            try await creates.withSlot {
                // Another run may have made it while this one waited for a slot.
                guard try connection.state(of: name) == nil else { return }
                let boot = try mediaFor?(node)
                let (disk, iso) = try await bootDisk(node, name: name, boot: boot)
                var xml = TalosDomainXML(name: name, memoryMiB: Int((node.machine.memory?.value ?? 4 << 30) >> 20), vcpus: node.machine.cpus?.value ?? 2,
                                         mac: mac, diskPath: disk, owner: "\(inventory.cluster.name.value)/\(node.name.value)")
                xml.bridge = node.machine.bridge?.value ?? "br0"
                xml.isoPath = iso
                xml.guestAgent = boot?.agent ?? false
                firmware(&xml)
                try await persisted?.simulate(name, "create", persisted?.createDelay ?? .zero)
                try connection.define(name: name, xml: xml.xml)
                try made?.record(name, mac: mac)
                saveState()
                changed = true
            }
        }
        if autostart, try !connection.autostart(of: name) {
            try connection.setAutostart(name, true)
            changed = true
        }
        if try connection.state(of: name) != .running {
            try await persisted?.simulate(name, "start", persisted?.startDelay ?? .zero)
            changed = true
            try connection.start(name)
        }
        return try await observe(node, in: inventory)
    }

    /// The bridge each domain still to be defined joins exists on the host, and the storage pool
    /// has room for their disks.
    public func preflight(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] {
        let creating = try nodes.filter { try connection.state(of: name($0)) == nil }
        var problems = bridgeProblems(creating)
        let missing = try creating.filter { try connection.volumeCapacity(pool: pool, name: "\(name($0)).raw") == nil }
        guard !missing.isEmpty else { return problems }
        let who = missing.map(\.name.value).joined(separator: ", ")
        // A pool still to be defined (hostChanges) has its room checked once it exists.
        guard let available = try connection.poolAvailable(pool) else { return problems }
        let bytes = missing.reduce(Int64(0)) { $0 + ($1.machine.diskSize?.value ?? 32 << 30) }
        if bytes > available {
            problems.append("storage pool \(pool) has \(SizeText.format(Int(available))) free and the disks of \(who) need \(SizeText.format(Int(bytes))); free space there or make the disks smaller")
        }
        return problems
    }

    /// A bridge the host does not have, for the nodes that would join it (Unraid's `br0` exists only
    /// while its bridging is on). Nothing when the host's libvirt cannot list its interfaces.
    func bridgeProblems(_ nodes: [NodeSpec]) -> [String] {
        guard !nodes.isEmpty, let interfaces = connection.allInterfaces() else { return [] }
        let names = Set(interfaces.map(\.name))
        let bridges = interfaces.filter { $0.xml.contains("type='bridge'") }.map(\.name).sorted()
        return Dictionary(grouping: nodes) { $0.machine.bridge?.value ?? "br0" }.sorted { $0.key < $1.key }.compactMap { bridge, users in
            guard !names.contains(bridge) else { return nil }
            return "bridge \(bridge) does not exist on \(connection.uri) (the NIC of \(users.map(\.name.value).joined(separator: ", ")) joins it); "
                + "on Unraid it exists while Settings → Network Settings → Enable bridging is on; or set machine.bridge to one the host has"
                + (bridges.isEmpty ? " (it has none)" : " (\(bridges.joined(separator: ", ")))")
        }
    }

    var pool: String { provider.setting("storagePool") ?? "default" }
    var isoPool: String { provider.setting("isoPool") ?? "isos" }
    /// Whether VMs are marked to start with their host (on unless the provider says `autostart: false`).
    var autostart: Bool { provider.setting("autostart") != "false" }

    /// A pool this provider keeps things in, and where it is defined when the host has none.
    struct PoolNeed: Equatable {
        var name: String
        var path: String
        var purpose: String
    }

    /// The pools missing on the host that the machines of `nodes` still to be made need: the disks'
    /// pool, and the ISO pool when one of them boots a Talos ISO uploaded by provision.
    func missingPools(_ nodes: [NodeSpec]) throws -> [PoolNeed] {
        let creating = try nodes.filter { try connection.state(of: name($0)) == nil }
        guard !creating.isEmpty else { return [] }
        let who = creating.map(\.name.value).joined(separator: ", ")
        var needs = [PoolNeed(name: pool, path: provider.setting("domainsPath") ?? "/mnt/user/domains", purpose: "the disks of \(who)")]
        let isoNodes = try creating.filter { try mediaFor?($0)?.kind == .iso }
        if !isoNodes.isEmpty, provider.setting("isoPath") == nil, isoPool != pool {
            needs.append(PoolNeed(name: isoPool, path: provider.setting("isosPath") ?? "/mnt/user/isos",
                                  purpose: "the Talos ISO of \(isoNodes.map(\.name.value).joined(separator: ", "))"))
        }
        return try needs.filter { try connection.poolAvailable($0.name) == nil }
    }

    public func hostChanges(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] {
        try missingPools(nodes).map { "define storage pool \($0.name) on \(connection.uri): a directory pool at \($0.path), autostarted, for \($0.purpose)" }
    }

    public func prepareHost(_ nodes: [NodeSpec], in inventory: Inventory) async throws {
        defer { saveState() }
        for need in try missingPools(nodes) {
            do { try connection.defineDirectoryPool(name: need.name, path: need.path) } catch {
                let virsh = "virsh -c \(connection.uri)"
                throw StepError.permanent("""
                    cannot define storage pool \(need.name) at \(need.path) (\(error)); define it once by hand: \
                    `\(virsh) pool-define-as \(need.name) dir --target \(need.path) && \(virsh) pool-build \(need.name) && \(virsh) pool-autostart \(need.name) && \(virsh) pool-start \(need.name)`, \
                    or set the provider's \(need.name == pool ? "storagePool" : "isoPool") to a pool that exists (`\(virsh) pool-list --all`)
                    """)
            }
        }
    }

    /// The VM's disk and the ISO on its CD-ROM. A disk without its domain is what an interrupted
    /// create left (the domain is defined only once its disk is whole): it is made again.
    func bootDisk(_ node: NodeSpec, name: String, boot: LibvirtBootMedia?) async throws -> (disk: String, iso: String?) {
        let volume = "\(name).raw", bytes = node.machine.diskSize?.value ?? 32 << 30
        if let stale = try connection.volumePath(pool: pool, name: volume) {
            try connection.deleteVolume(pool: pool, name: volume)
            persisted?.removeMedia(at: stale)
        }
        switch boot?.kind {
        case .disk?:
            let image = try await ensureMedia(boot!)
            guard image.bytes <= bytes else {
                throw StepError.permanent("\(node.name.value): the Talos disk image is \(SizeText.format(Int(image.bytes))), larger than machine.disk \(SizeText.format(Int(bytes))); give it a bigger disk")
            }
            return (try copyVolume(from: boot!.volume, to: volume, capacity: bytes), nil)
        case .iso?:
            var iso = provider.setting("isoPath")
            if iso == nil { iso = try await ensureMedia(boot!).path }
            return (try connection.ensureVolume(pool: pool, name: volume, bytes: bytes), iso)
        case nil:
            return (try connection.ensureVolume(pool: pool, name: volume, bytes: bytes), provider.setting("isoPath"))
        }
    }

    /// The medium's volume in the pool, downloaded and uploaded the first time: into `NAME.part`,
    /// then copied to its name, so a name in the pool always holds a whole, checked image.
    func ensureMedia(_ boot: LibvirtBootMedia) async throws -> StoredMedia {
        // An ISO goes in the ISO pool (Unraid's isos share), a disk image beside the disks made from it.
        let pool = boot.kind == .iso ? isoPool : self.pool
        return try await media.run(boot.volume) { [self] in
            if let path = try connection.volumePath(pool: pool, name: boot.volume) {
                return StoredMedia(path: path, bytes: try connection.volumeCapacity(pool: pool, name: boot.volume) ?? 0)
            }
            let part = boot.volume + ".part"
            if let stale = try connection.volumePath(pool: pool, name: part) {
                try connection.deleteVolume(pool: pool, name: part)
                persisted?.removeMedia(at: stale)
            }
            let (file, bytes) = try await BootMediaDownload.fetch(boot.url)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let gzip = boot.kind == .disk
            if !gzip { try BootMediaDownload.checkISO(file, url: boot.url) }
            let capacity = gzip ? try BootMediaDownload.gzipSize(file) : bytes
            if let persisted {
                // The test driver takes no upload: the lab keeps the bytes beside its hypervisor file.
                let path = try connection.ensureVolume(pool: pool, name: part, bytes: capacity)
                try persisted.storeMedia(at: path) { write in try BootMediaDownload.stream(file, gzip: gzip, to: write) }
            } else {
                try connection.upload(pool: pool, name: part, capacity: capacity) { write in try BootMediaDownload.stream(file, gzip: gzip, to: write) }
            }
            let path = try copyVolume(from: part, to: boot.volume, capacity: capacity, in: pool)
            let partPath = try connection.volumePath(pool: pool, name: part)
            try connection.deleteVolume(pool: pool, name: part)
            if let partPath { persisted?.removeMedia(at: partPath) }
            saveState()
            return StoredMedia(path: path, bytes: capacity)
        }
    }

    /// A copy of a volume (the lab copies the bytes it keeps for it too).
    func copyVolume(from source: String, to name: String, capacity: Int64, in pool: String? = nil) throws -> String {
        let pool = pool ?? self.pool
        let path = try connection.cloneVolume(pool: pool, from: source, to: name, capacity: capacity)
        if let persisted, let from = try connection.volumePath(pool: pool, name: source) { try persisted.copyMedia(from: from, to: path) }
        return path
    }

    /// Firmware: the provider's `loader` and `nvramTemplate` when set; else Unraid's OVMF where
    /// libvirt offers it (the files Unraid's own VM manager names, unraid/webgui 6.12 to 7.x
    /// dynamix.vm.manager libvirt.php); else libvirt's automatic EFI, Secure Boot off.
    func firmware(_ xml: inout TalosDomainXML) {
        xml.domainType = provider.setting("domainType") ?? "kvm"
        if let loader = provider.setting("loader") {
            xml.loader = loader
            xml.nvramTemplate = provider.setting("nvramTemplate")
        } else if connection.firmwareLoaders(domainType: xml.domainType).contains(Self.unraidLoader) {
            xml.loader = Self.unraidLoader
            xml.nvramTemplate = Self.unraidVars
        }
    }

    static let unraidLoader = "/usr/share/qemu/ovmf-x64/OVMF_CODE-pure-efi.fd"
    static let unraidVars = "/usr/share/qemu/ovmf-x64/OVMF_VARS-pure-efi.fd"

    public func stop(_ node: NodeSpec, in inventory: Inventory) async throws {
        let name = name(node)
        guard try connection.state(of: name) == .running else { return }
        defer { saveState() }
        try connection.shutdown(name)
        let deadline = ContinuousClock.now + shutdownTimeout
        while ContinuousClock.now < deadline {
            if try connection.state(of: name) != .running { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        try connection.destroy(name)
    }

    /// Domains whose `<provision:node>` mark says `cluster/NODE`, and those without a mark that
    /// carry a MAC provision made one of this host's VMs with (the mark lost to Unraid's form).
    public func machines(ownedBy cluster: String) async throws -> [String] {
        let madeMACs = Set((made?.all() ?? [:]).values)
        return try connection.allDomains().compactMap { domain in
            guard let name = TestDriverState.name(of: domain.xml) else { return nil }
            guard let start = domain.xml.range(of: "<provision:node"), let open = domain.xml.range(of: ">", range: start.upperBound..<domain.xml.endIndex),
                  let close = domain.xml.range(of: "</provision:node>", range: open.upperBound..<domain.xml.endIndex) else {
                return Self.shape(domain.xml, disk: nil).macs.contains { madeMACs.contains($0.lowercased()) } ? name : nil
            }
            return domain.xml[open.upperBound..<close.lowerBound].hasPrefix(cluster + "/") ? name : nil
        }
    }

    /// Stops and undefines the domain and deletes the disk volume provision made for it, so a
    /// retired VM gives its storage back.
    public func delete(_ node: NodeSpec, in inventory: Inventory) async throws {
        let name = name(node)
        defer { saveState() }
        if let state = try connection.state(of: name) {
            if state == .running { try connection.destroy(name) }
            try connection.undefine(name)
        }
        try made?.forget(name)
        if let path = try connection.volumePath(pool: pool, name: "\(name).raw") {
            try connection.deleteVolume(pool: pool, name: "\(name).raw")
            persisted?.removeMedia(at: path)
        }
    }
}
