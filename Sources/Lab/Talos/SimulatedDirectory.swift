/// Which simulated node answers at which address: what apid's `nodes` routing dials.
public actor SimulatedDirectory {
    private var nodes: [String: SimulatedTalosNode] = [:]

    public init() {}

    func register(_ node: SimulatedTalosNode) { nodes[node.spec.address] = node }

    func node(at address: String) -> SimulatedTalosNode? { nodes[address] }

    /// Every node that has ever powered on (VMs, Mac minis, EC2 instances), by address.
    var all: [SimulatedTalosNode] { nodes.keys.sorted().compactMap { nodes[$0] } }
}
