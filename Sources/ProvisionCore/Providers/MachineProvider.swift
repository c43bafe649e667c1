/// What a provider reports about one machine.
public struct MachineState: Sendable, Equatable {
    public enum Power: String, Sendable { case absent, stopped, running, unknown }

    public var power: Power
    /// Provider-side identity: a Proxmox VM id, a libvirt domain name, an EC2 instance id, a MAC.
    public var id: String?
    public var address: IPv4Address?
    public var tags: [String: String]

    public init(power: Power, id: String? = nil, address: IPv4Address? = nil, tags: [String: String] = [:]) {
        self.power = power
        self.id = id
        self.address = address
        self.tags = tags
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
}

extension MachineProvider {
    public func machines(ownedBy cluster: String) async throws -> [String] { [] }
}
