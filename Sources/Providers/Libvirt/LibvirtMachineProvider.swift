import Foundation
import ProvisionCore
import Synchronization

/// Inventory nodes as libvirt domains (Unraid, or the lab's test driver): a volume in the provider's
/// storage pool, the Talos domain XML, started. One connection per provider, shared by every call.
public final class LibvirtMachineProvider: MachineProvider {
    let provider: ProviderSpec
    let connection: LibvirtConnection
    /// How long an ACPI shutdown may take before the domain is powered off.
    let shutdownTimeout: Duration
    /// The lab's test-driver file, written after every change so the hypervisor outlives the process.
    let persisted: TestDriverState?
    /// Creates at once on this host (`maxParallel`, default 2).
    let creates: AsyncSemaphore
    /// One save at a time, each reading the hypervisor as it is then: two parallel creates never
    /// write an older picture over a newer one.
    private let saving = Mutex(())
    /// Changes counted and the count the last save covered: a caller whose change a later save
    /// already wrote returns without writing the file again (203 creates wrote it 203 times).
    private let saves = Mutex((changes: 0, saved: 0))

    public init(provider: ProviderSpec, shutdownTimeout: Duration = .seconds(60), persisted: TestDriverState? = nil) throws {
        self.provider = provider
        self.shutdownTimeout = shutdownTimeout
        self.persisted = persisted
        creates = AsyncSemaphore(provider.setting("maxParallel").flatMap { Int($0) } ?? 2)
        connection = try LibvirtConnection(uri: try persisted?.prepare() ?? provider.endpoint?.value ?? provider.setting("uri") ?? "")
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
        let disk = try connection.volumeCapacity(pool: provider.setting("storagePool") ?? "default", name: "\(name).raw")
        return MachineState(power: power, id: name, address: node.address.value, shape: Self.shape(try connection.xml(of: name), disk: disk))
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
                let pool = provider.setting("storagePool") ?? "default"
                let disk = try connection.ensureVolume(pool: pool, name: "\(name).raw", bytes: node.machine.diskSize?.value ?? 32 << 30)
                var xml = TalosDomainXML(name: name, memoryMiB: Int((node.machine.memory?.value ?? 4 << 30) >> 20), vcpus: node.machine.cpus?.value ?? 2,
                                         mac: mac, diskPath: disk, owner: "\(inventory.cluster.name.value)/\(node.name.value)")
                xml.bridge = node.machine.bridge?.value ?? "br0"
                try await persisted?.simulate(name, "create", persisted?.createDelay ?? .zero)
                try connection.define(name: name, xml: xml.xml)
                saveState()
                changed = true
            }
        }
        if try connection.state(of: name) != .running {
            try await persisted?.simulate(name, "start", persisted?.startDelay ?? .zero)
            changed = true
            try connection.start(name)
        }
        return try await observe(node, in: inventory)
    }

    /// The storage pool exists and has room for the disks of every domain still to be defined.
    public func preflight(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] {
        let missing = try nodes.filter { try connection.state(of: name($0)) == nil && connection.volumeCapacity(pool: pool, name: "\(name($0)).raw") == nil }
        guard !missing.isEmpty else { return [] }
        let who = missing.map(\.name.value).joined(separator: ", ")
        guard let available = try connection.poolAvailable(pool) else {
            return ["storage pool \(pool) does not exist on \(connection.uri) (needed for the disks of \(who)); set the provider's storagePool to one that does (`virsh pool-list --all`)"]
        }
        let bytes = missing.reduce(Int64(0)) { $0 + ($1.machine.diskSize?.value ?? 32 << 30) }
        guard bytes <= available else {
            return ["storage pool \(pool) has \(SizeText.format(Int(available))) free and the disks of \(who) need \(SizeText.format(Int(bytes))); free space there or make the disks smaller"]
        }
        return []
    }

    var pool: String { provider.setting("storagePool") ?? "default" }

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

    /// Domains whose `<provision:node>` mark says `cluster/NODE`.
    public func machines(ownedBy cluster: String) async throws -> [String] {
        try connection.allDomains().compactMap { domain in
            guard let start = domain.xml.range(of: "<provision:node"), let open = domain.xml.range(of: ">", range: start.upperBound..<domain.xml.endIndex),
                  let close = domain.xml.range(of: "</provision:node>", range: open.upperBound..<domain.xml.endIndex) else { return nil }
            let owner = domain.xml[open.upperBound..<close.lowerBound]
            guard owner.hasPrefix(cluster + "/"), let name = domain.xml.range(of: "<name>").flatMap({ n in
                domain.xml.range(of: "</name>", range: n.upperBound..<domain.xml.endIndex).map { String(domain.xml[n.upperBound..<$0.lowerBound]) }
            }) else { return nil }
            return name
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
        try connection.deleteVolume(pool: provider.setting("storagePool") ?? "default", name: "\(name).raw")
    }
}
