import Foundation
import ProvisionCore

/// The lab's home router: the address each machine's NIC gets by DHCP while it has no config
/// (Talos in maintenance runs DHCP on every link, talos v1.13.9 `container.go`
/// RunDefaultDHCPOperators). A reservation gives its address; every other machine gets one from
/// the pool, the same one each time (a router keeps a MAC's lease), in inventory order.
enum LabRouter {
    /// Node name -> its lease. `lab.dhcp.reservations` absent: every node is reserved at its
    /// inventory address, as the README tells an operator to set the router up.
    static func leases(_ inventory: Inventory) -> [String: String] {
        let dhcp = inventory.lab?.dhcp ?? LabDHCP()
        guard let reservations = dhcp.reservations else {
            return Dictionary(uniqueKeysWithValues: inventory.nodes.map { ($0.name.value, $0.address.value.description) })
        }
        var leases: [String: String] = [:]
        for reservation in reservations { leases[reservation.node.value] = reservation.address.value.description }
        let reserved = Set(leases.values)
        var pool = addresses(dhcp, inventory.cluster.nodeCIDR.value).filter { !reserved.contains($0.description) }.makeIterator()
        for node in inventory.nodes where leases[node.name.value] == nil {
            guard let address = pool.next() else { break }
            leases[node.name.value] = address.description
        }
        return leases
    }

    /// The pool: `lab.dhcp.pool`, else `.100` to `.199` of the node network (clipped to it).
    static func addresses(_ dhcp: LabDHCP, _ network: IPv4Network) -> [IPv4Address] {
        let first = dhcp.pool?.first.value.raw ?? network.network.raw + 100
        let last = dhcp.pool?.last.value.raw ?? min(network.network.raw + 199, network.broadcast.raw - 1)
        guard first <= last else { return [] }
        return (first...last).map(IPv4Address.init(raw:))
    }
}
