import Foundation
import Synchronization

/// Where this process may send packets. Unrestricted by default; `PROVISION_ALLOWED_NETWORKS`
/// (comma-separated CIDRs) or a lab inventory (loopback only) narrows it, and every client that
/// opens a socket (Talos, Proxmox, EC2, libvirt, Wake-on-LAN, probes) asks first. So a test or a lab
/// run can never reach a real network, even through a typo in an inventory.
public struct NetworkPolicy: Sendable, Equatable {
    /// nil: anything goes.
    public var allowed: [IPv4Network]?

    public init(allowed: [IPv4Network]?) { self.allowed = allowed }

    public static let loopback = NetworkPolicy(allowed: [IPv4Network("127.0.0.0/8")!])

    /// Parses the environment form; nil when a part is not a CIDR.
    public static func parse(_ text: String) -> NetworkPolicy? {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let networks = parts.compactMap(IPv4Network.init)
        guard networks.count == parts.count, !networks.isEmpty else { return nil }
        return NetworkPolicy(allowed: networks)
    }

    static let state = Mutex<NetworkPolicy>(fromEnvironment())

    static func fromEnvironment() -> NetworkPolicy {
        guard let text = ProcessInfo.processInfo.environment["PROVISION_ALLOWED_NETWORKS"] else { return NetworkPolicy(allowed: nil) }
        // A malformed value must not mean "allow everything".
        return parse(text) ?? NetworkPolicy(allowed: [])
    }

    /// The process-wide policy.
    public static var current: NetworkPolicy { state.withLock { $0 } }

    /// Narrows the process-wide policy (never widens it): what is allowed afterwards is allowed by both.
    public static func restrict(to policy: NetworkPolicy) {
        state.withLock { current in
            guard let narrower = policy.allowed else { return }
            guard let existing = current.allowed else { current = policy; return }
            // The intersection of two CIDR lists: where two networks overlap, the smaller one is inside the larger.
            current.allowed = existing.flatMap { a in
                narrower.compactMap { b in a.overlaps(b) ? (a.prefix >= b.prefix ? a : b) : nil }
            }
        }
    }

    /// Whether a packet to `host` (an IPv4 literal or `localhost`) is allowed. Names are refused under a
    /// restriction: even resolving them could leave the machine.
    public func permits(host: String) -> Bool {
        guard let allowed else { return true }
        let address = host == "localhost" ? IPv4Address("127.0.0.1") : IPv4Address(host)
        guard let address else { return false }
        return allowed.contains { $0.contains(address) }
    }

    /// Throws the refusal a user sees, naming the address, the purpose and where the limit comes from.
    public func check(host: String, for purpose: String) throws(NetworkRefused) {
        guard !permits(host: host) else { return }
        throw NetworkRefused(host: host, purpose: purpose, allowed: allowed ?? [])
    }

    public static func check(host: String, for purpose: String) throws(NetworkRefused) {
        try current.check(host: host, for: purpose)
    }
}

/// A connection the network policy stopped before any packet was sent.
public struct NetworkRefused: ClassifiedError, CustomStringConvertible, Sendable {
    public var isTransient: Bool { false }
    public let host: String
    public let purpose: String
    public let allowed: [IPv4Network]

    public var description: String {
        let networks = allowed.isEmpty ? "no network (PROVISION_ALLOWED_NETWORKS is not a list of CIDRs)" : allowed.map(\.description).joined(separator: ", ")
        return "refusing to contact \(host) (\(purpose)): only \(networks) may be reached here "
            + "(PROVISION_ALLOWED_NETWORKS, or a lab inventory, which stays on loopback)"
    }
}
