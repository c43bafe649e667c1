/// Which simulated node answers at which address: what apid's `nodes` routing dials.
public actor SimulatedDirectory {
    private var nodes: [String: SimulatedTalosNode] = [:]
    /// Installer images Image Factory has built (it builds a schematic's on its first request).
    private var factoryBuilt: Set<String> = []
    /// Where the machines' stage changes are written down.
    nonisolated let record: LabRecord

    public init(record: LabRecord = LabRecord()) {
        self.record = record
    }

    /// Makes the lab's state durable (a saved twin) before a mutating call answers, as a real
    /// machine's change is done once it is acknowledged; nil for a lab that is not saved.
    private var persist: (@Sendable () async -> Void)?

    /// Whether this request for `image` is the first, which has the factory build it.
    func firstFactoryRequest(_ image: String) -> Bool { factoryBuilt.insert(image).inserted }

    func setPersistence(_ persist: @escaping @Sendable () async -> Void) { self.persist = persist }

    /// Called by every mutating operation before it answers.
    func commit() async { await persist?() }

    func register(_ node: SimulatedTalosNode) { nodes[node.spec.address] = node }

    /// The machine answering at `address` now (its lease in maintenance, its static address after).
    func node(at address: String) async -> SimulatedTalosNode? {
        for node in nodes.values where await node.address == address { return node }
        return nil
    }

    /// Every node that has ever powered on (VMs, Mac minis, EC2 instances), by address.
    var all: [SimulatedTalosNode] { nodes.keys.sorted().compactMap { nodes[$0] } }
}
