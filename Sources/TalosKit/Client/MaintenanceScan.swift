import Foundation
import ProvisionCore

/// Finds the Talos machines in maintenance on one small network and the MACs of their links.
/// Maintenance answers without a client certificate, so each address gets one identify-mode
/// handshake: a configured machine (ours or not) is told nothing; only maintenance is asked, and
/// only for its links. Bounded: a /24 at most, never outside `network`, at most `parallel`
/// connections open and `perSecond` new ones a second, each address skipped when the network
/// policy forbids it.
public struct MaintenanceScan: Sendable {
    public struct Found: Sendable, Equatable {
        public var address: String
        public var links: [NetworkLink]
        /// The MACs of its own NICs: what names the machine.
        public var macs: [String] { links.filter(\.isPhysical).map(\.mac) }
    }

    public var network: IPv4Network
    public var port: Int
    /// Addresses never dialled (the gateway, the VIP, the nodes already found).
    public var skip: Set<IPv4Address>
    public var parallel = 32
    public var perSecond = 128
    public var timeout: Duration = .seconds(2)

    public init(network: IPv4Network, port: Int = 50000, skip: Set<IPv4Address> = []) {
        self.network = network
        self.port = port
        self.skip = skip
    }

    public static let widest = 24

    /// The addresses it dials, in order: the network's hosts, without its network and broadcast
    /// addresses, without `skip`; none for a network wider than a /24.
    public var addresses: [IPv4Address] {
        guard network.prefix >= Self.widest else { return [] }
        let first = network.network.raw, last = network.broadcast.raw
        let hosts = network.prefix >= 31 ? first...last : (first + 1)...(last - 1)
        return hosts.map(IPv4Address.init(raw:)).filter { !skip.contains($0) }
    }

    public func run() async -> [Found] {
        let spacing = Duration.milliseconds(1000 / max(1, perSecond))
        var found: [Found] = []
        await withTaskGroup(of: Found?.self) { group in
            var open = 0
            for address in addresses {
                if open >= parallel, let result = await group.next() {
                    open -= 1
                    if let result { found.append(result) }
                }
                group.addTask { await probe(address) }
                open += 1
                try? await Task.sleep(for: spacing)
            }
            for await result in group { if let result { found.append(result) } }
        }
        return found.sorted { (IPv4Address($0.address)?.raw ?? 0) < (IPv4Address($1.address)?.raw ?? 0) }
    }

    func probe(_ address: IPv4Address) async -> Found? {
        var probe = TalosProbe(host: address.description, port: port, credentials: nil)
        probe.timeout = timeout
        probe.readDisks = false
        probe.readEtcdMembers = false
        probe.brief = true
        let result = await probe.run()
        result.connection?.close()
        guard result.mode == .maintenance, let links = result.links else { return nil }
        return Found(address: address.description, links: links)
    }
}
