import Foundation

/// Talos' `LinkStatuses.net.talos.dev` (namespace `network`): the node's links with their MACs,
/// readable in maintenance mode. Spec fields as talos v1.13.9
/// `pkg/machinery/resources/network/link_status.go` names them; MACs as Go prints them (lowercase).
public struct NetworkLink: Sendable, Equatable {
    public var name: String
    /// `ether`, `loopback`, ...
    public var type: String
    /// Empty for a physical NIC; `bridge`, `bond`, `vlan`... for links Talos made.
    public var kind: String
    public var hardwareAddr: String
    /// The NIC's own MAC (what the rendered configs select the link by).
    public var permanentAddr: String

    public init(name: String, type: String, kind: String = "", hardwareAddr: String, permanentAddr: String) {
        self.name = name
        self.type = type
        self.kind = kind
        self.hardwareAddr = hardwareAddr
        self.permanentAddr = permanentAddr
    }

    /// Read as text (`ResourceSpec`): Talos writes MACs unquoted.
    public init(name: String, yaml: String) throws {
        let spec = try ResourceSpec(yaml, kind: "LinkStatus")
        self.init(name: name, type: spec.text("type"), kind: spec.text("kind"), hardwareAddr: spec.text("hardwareAddr"), permanentAddr: spec.text("permanentAddr"))
    }

    public var yaml: String {
        "index: 2\ntype: \(type)\nkind: \"\(kind)\"\nhardwareAddr: \(hardwareAddr)\npermanentAddr: \(permanentAddr)\nlinkState: true\n"
    }

    /// A NIC of the machine's own, not a link Talos made or the loopback.
    public var isPhysical: Bool { type == "ether" && kind.isEmpty }

    /// The MAC that identifies the NIC: its permanent address, else the current one.
    public var mac: String { (permanentAddr.isEmpty ? hardwareAddr : permanentAddr).lowercased() }
}

extension TalosClient {
    public func links() async throws -> [NetworkLink] {
        try await resources(namespace: "network", type: "LinkStatuses.net.talos.dev").map { try NetworkLink(name: $0.id, yaml: $0.spec) }
    }
}
