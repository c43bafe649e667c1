/// An IPv4 address; the inventory speaks IPv4 (node addresses, VIP, gateway, CIDRs).
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var raw: UInt32

    public init(raw: UInt32) { self.raw = raw }

    /// Parses dotted-quad notation strictly: four decimal octets, no leading zeros.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                  !(part.count > 1 && part.first == "0"), let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        raw = value
    }

    public var description: String {
        "\(raw >> 24).\(raw >> 16 & 0xff).\(raw >> 8 & 0xff).\(raw & 0xff)"
    }

    public var isLoopback: Bool { raw >> 24 == 127 }
    /// 169.254.0.0/16: what a NIC holds before DHCP answers, never a node's address.
    public var isLinkLocal: Bool { raw >> 16 == 0xA9FE }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.raw < rhs.raw }
}

/// An IPv4 network in CIDR notation.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let prefix = Int(parts[1]),
              (0...32).contains(prefix) else { return nil }
        self.address = address
        self.prefix = prefix
    }

    public var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }
    public var network: IPv4Address { IPv4Address(raw: address.raw & mask) }
    public var broadcast: IPv4Address { IPv4Address(raw: network.raw | ~mask) }
    /// True when the address part has host bits set (e.g. 10.0.0.1/8), which is usually a typo.
    public var hasHostBits: Bool { address.raw & ~mask != 0 }

    public func contains(_ address: IPv4Address) -> Bool { address.raw & mask == network.raw }

    public func overlaps(_ other: IPv4Network) -> Bool { contains(other.network) || other.contains(network) }

    public var description: String { "\(address)/\(prefix)" }
}

/// A MAC address, normalised to lower-case colon form.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    public var isMulticast: Bool { bytes[0] & 1 == 1 }

    public var description: String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}
