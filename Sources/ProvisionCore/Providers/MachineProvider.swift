/// What a provider reports about one machine.
public struct MachineState: Sendable, Equatable {
    public enum Power: String, Sendable { case absent, stopped, running, unknown }

    public var power: Power
    /// Provider-side identity: a Proxmox VM id, a libvirt domain name, an EC2 instance id, a MAC.
    public var id: String?
    public var address: IPv4Address?
    public var tags: [String: String]
    /// The machine's size as the provider has it (VMs), to compare with the inventory.
    public var shape: MachineShape?
    /// Whether its host starts it when the host starts (libvirt's flag); nil where there is no such thing.
    public var autostart: Bool?

    public init(power: Power, id: String? = nil, address: IPv4Address? = nil, tags: [String: String] = [:], shape: MachineShape? = nil, autostart: Bool? = nil) {
        self.power = power
        self.id = id
        self.address = address
        self.tags = tags
        self.shape = shape
        self.autostart = autostart
    }
}

/// A VM's size: what `plan` compares with the inventory's cpus, memory, disk and MAC.
public struct MachineShape: Sendable, Equatable {
    public var cpus: Int?
    public var memoryBytes: Int64?
    public var diskBytes: Int64?
    public var macs: [String]

    public init(cpus: Int?, memoryBytes: Int64?, diskBytes: Int64?, macs: [String]) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.diskBytes = diskBytes
        self.macs = macs
    }

    /// How `node`'s inventory entry differs from this shape, in words (`cpus 2 -> 4`); empty when it does not.
    public func differences(from node: NodeSpec) -> [String] {
        var found: [String] = []
        func gib(_ bytes: Int64) -> String { bytes % (1 << 30) == 0 ? "\(bytes >> 30)GiB" : "\(bytes >> 20)MiB" }
        if let want = node.machine.cpus?.value, let have = cpus, want != have { found.append("cpus \(have) -> \(want)") }
        if let want = node.machine.memory?.value, let have = memoryBytes, want != have { found.append("memory \(gib(have)) -> \(gib(want))") }
        if let want = node.machine.diskSize?.value, let have = diskBytes, want != have { found.append("disk \(gib(have)) -> \(gib(want))") }
        if let want = node.machine.mac?.value.description.lowercased(), !macs.isEmpty, !macs.map({ $0.lowercased() }).contains(want) {
            found.append("NIC \(macs.joined(separator: ",")) -> \(want)")
        }
        return found
    }
}

/// The seam every machine backend implements (Proxmox, libvirt/Unraid, bare metal, EC2), so step kinds
/// and the lab never depend on a particular hypervisor. Every mutating call must be idempotent: it is
/// called again after a crash at any point, and must then neither duplicate nor lose a machine.
public protocol MachineProvider: Sendable {
    /// Reads the machine's state without changing anything.
    func observe(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState
    /// Makes the machine exist and run (create if absent, start if stopped). Returns the new state.
    func ensureRunning(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState
    /// Stops the machine, gracefully first.
    func stop(_ node: NodeSpec, in inventory: Inventory) async throws
    /// Removes a VM or instance. Bare metal refuses: a reset is the only destructive verb for metal.
    func delete(_ node: NodeSpec, in inventory: Inventory) async throws
    /// The names of the machines this provider holds that provision made for `cluster` (its owner
    /// mark or tags): what finds a VM the inventory no longer lists. Metal holds none.
    func machines(ownedBy cluster: String) async throws -> [String]
    /// Before anything is created, in one pass: what would stop creating the machines of `nodes`
    /// that do not exist yet (a storage or pool that is missing, lacks a content type, or has no room
    /// for all their disks), each problem naming every node it stops. Empty when nothing would.
    func preflight(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String]
    /// What the host needs before the machines of `nodes` that do not exist yet can be made there
    /// (a storage pool to define), each said for the plan; empty when nothing.
    func hostChanges(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String]
    /// Makes those changes; an error names what to do by hand.
    func prepareHost(_ nodes: [NodeSpec], in inventory: Inventory) async throws
}

extension MachineProvider {
    public func machines(ownedBy cluster: String) async throws -> [String] { [] }
    public func preflight(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] { [] }
    public func hostChanges(_ nodes: [NodeSpec], in inventory: Inventory) async throws -> [String] { [] }
    public func prepareHost(_ nodes: [NodeSpec], in inventory: Inventory) async throws {}
}
