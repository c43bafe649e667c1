import Foundation
import TalosKit

/// The network a machine config gives a node, as Talos resolves it (talos v1.13.9):
/// - any link document (LinkConfig, BondConfig, ...) or DHCP document turns the default DHCP off on
///   every link (`pkg/machinery/config/container/container.go` RunDefaultDHCPOperators);
/// - a LinkAliasConfig names the one link its selector matches; matching none (or several) it is
///   skipped, and what refers to the alias lands nowhere (`controllers/network/link_alias_config.go`);
/// - LinkConfig addresses and a Layer2VIPConfig go on the link they name, an alias or a real name.
/// The lab's machine has one NIC (`enp1s0`); selectors are read in the one form the product writes,
/// `mac(link.permanent_addr) == "..."` (any other expression matches nothing here: an assumption).
struct ConfiguredNetwork: Sendable {
    /// Default DHCP still runs: no link or DHCP document.
    var defaultDHCP = true
    /// A DHCPv4Config names the NIC (or its alias): it keeps asking DHCP.
    var dhcpLinks: [String] = []
    /// Alias name -> the MAC its selector wants.
    var aliases: [String: String] = [:]
    /// LinkConfig addresses (without the prefix length), by the link name they give.
    var addresses: [(link: String, address: String)] = []
    /// Layer2VIPConfig: the shared address and its link.
    var vips: [(address: String, link: String)] = []
    /// EthernetConfig names whose `wakeOnLan` includes `magic`. By kernel name only: Talos hands the
    /// document's name to ethtool and resolves no alias (`controllers/network/ethernet_spec.go`).
    var magicWakeLinks: [String] = []

    static let nicName = "enp1s0"
    static let linkKinds: Set<String> = ["LinkConfig", "BondConfig", "BridgeConfig", "VLANConfig", "DummyLinkConfig", "WireguardConfig"]
    static let dhcpKinds: Set<String> = ["DHCPv4Config", "DHCPv6Config"]

    init(documents: [ConfigValue]) {
        for document in documents {
            let kind = document["kind"]?.stringValue ?? ""
            let name = document["name"]?.stringValue ?? ""
            if Self.linkKinds.contains(kind) || Self.dhcpKinds.contains(kind) { defaultDHCP = false }
            switch kind {
            case "LinkAliasConfig":
                if let match = document["selector"]?["match"]?.stringValue, let mac = Self.selectedMAC(match) { aliases[name] = mac }
            case "LinkConfig":
                if case let .list(items)? = document["addresses"] {
                    for item in items {
                        if let cidr = item["address"]?.stringValue { addresses.append((name, String(cidr.split(separator: "/").first ?? ""))) }
                    }
                }
            case "DHCPv4Config": dhcpLinks.append(name)
            case "EthernetConfig":
                if case let .list(modes)? = document["wakeOnLan"], modes.contains(where: { $0.stringValue == "magic" }) { magicWakeLinks.append(name) }
            case "Layer2VIPConfig":
                if let link = document["link"]?.stringValue { vips.append((name, link)) }
            default: break
            }
        }
    }

    /// `mac(link.permanent_addr) == "aa:bb:..."` -> the MAC, lower case.
    static func selectedMAC(_ expression: String) -> String? {
        let parts = expression.split(separator: "==", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, parts[0] == "mac(link.permanent_addr)", parts[1].hasPrefix("\""), parts[1].hasSuffix("\""), parts[1].count > 2 else { return nil }
        return String(parts[1].dropFirst().dropLast()).lowercased()
    }

    /// Whether a link name in the config means the machine's NIC: its own name, or an alias whose
    /// selector matches the NIC's permanent MAC.
    func names(_ link: String, nicMAC: String) -> Bool {
        if link == Self.nicName { return true }
        return aliases[link] == nicMAC.lowercased()
    }

    /// The NIC's static address, if the config puts one on it.
    func staticAddress(nicMAC: String) -> String? {
        addresses.first { names($0.link, nicMAC: nicMAC) }?.address
    }

    /// Whether the NIC still takes a DHCP lease.
    func usesDHCP(nicMAC: String) -> Bool {
        defaultDHCP || dhcpLinks.contains { names($0, nicMAC: nicMAC) }
    }

    /// Whether the NIC's Wake-on-LAN is armed for magic packets: an EthernetConfig for its kernel name.
    var armsMagicWake: Bool { magicWakeLinks.contains(Self.nicName) }

    /// The shared addresses this machine campaigns for.
    func sharedAddresses(nicMAC: String) -> [String] {
        vips.filter { names($0.link, nicMAC: nicMAC) }.map(\.address)
    }
}
