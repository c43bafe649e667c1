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
    /// How long a connect may take, and a Talos handshake's calls.
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

    /// First which addresses accept a connection at all (batches of `parallel`, at most
    /// `perSecond` a second), then one Talos handshake to each of those.
    public func run() async -> [Found] {
        let hosts = addresses.map(\.description)
        var open: [String] = []
        var start = 0
        while start < hosts.count {
            let batch = Array(hosts[start..<min(start + parallel, hosts.count)])
            let began = ContinuousClock.now
            let answering = await TCPProbe.answering(batch, port: port, timeout: timeout)
            open += batch.filter(answering.contains)
            start += batch.count
            let spacing = Duration.milliseconds(1000 * batch.count / max(1, perSecond)) - (ContinuousClock.now - began)
            if hosts.count > start, spacing > .zero { try? await Task.sleep(for: spacing) }
        }
        var found: [Found] = []
        for host in open {
            if let address = IPv4Address(host), let machine = await probe(address) { found.append(machine) }
        }
        return found
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
