import Foundation
import ProvisionCore

/// Cilium's settings from the inventory, in `--set` form, as Talos documents them for Cilium on
/// Talos: IPAM from Kubernetes (pod CIDRs from the inventory's podCIDR), kube-proxy replacement
/// through KubePrism (localhost:7445) or the cluster endpoint, Talos' cgroup mount and capability
/// set, Hubble on or off, and XDP acceleration only when every machine's hardware class allows it
/// (Mac minis do not). The inventory's `cni.values` come last and win.
struct CiliumValues: Sendable {
    var settings: [(String, String)]
    /// Why XDP is off, for the step log; nil when it is on.
    var xdpOff: String?

    init(_ inventory: Inventory) {
        let cluster = inventory.cluster
        var values: [(String, String)] = [
            ("ipam.mode", "kubernetes"),
            ("ipv4NativeRoutingCIDR", cluster.podCIDR.value.description),
            ("kubeProxyReplacement", inventory.cni.kubeProxyReplacement ? "true" : "false"),
            ("securityContext.capabilities.ciliumAgent", "{CHOWN,KILL,NET_ADMIN,NET_RAW,IPC_LOCK,SYS_ADMIN,SYS_RESOURCE,DAC_OVERRIDE,FOWNER,SETGID,SETUID}"),
            ("securityContext.capabilities.cleanCiliumState", "{NET_ADMIN,SYS_ADMIN,SYS_RESOURCE}"),
            ("cgroup.autoMount.enabled", "false"),
            ("cgroup.hostRoot", "/sys/fs/cgroup"),
            ("hubble.enabled", inventory.cni.hubble ? "true" : "false"),
            ("hubble.relay.enabled", inventory.cni.hubble ? "true" : "false"),
        ]
        if inventory.cni.apiServer.value == "kubeprism" {
            values += [("k8sServiceHost", "localhost"), ("k8sServicePort", "7445")]
        } else if let url = URL(string: cluster.endpoint.value), let host = url.host {
            values += [("k8sServiceHost", host), ("k8sServicePort", "\(url.port ?? 6443)")]
        }
        let noXDP = inventory.nodes.filter { node in inventory.image(named: node.image.value)?.xdpAcceleration == false }.map(\.name.value)
        values.append(("loadBalancer.acceleration", noXDP.isEmpty ? "native" : "disabled"))
        xdpOff = noXDP.isEmpty ? nil : "XDP acceleration off: \(noXDP.joined(separator: ", ")) cannot run it"
        for (key, value) in Self.flatten(inventory.cni.values) {
            values.removeAll { $0.0 == key }
            values.append((key, value))
        }
        settings = values
    }

    /// `key=value` pairs for `cilium install --set`.
    var flags: [String] { settings.map { "\($0.0)=\($0.1)" } }

    /// A short, stable fingerprint of the values: a new one means the installer must run again.
    var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in flags.joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// Nested inventory values as dotted keys (`hubble.ui.enabled=true`).
    static func flatten(_ node: YAMLNode?, prefix: String = "") -> [(String, String)] {
        guard let node else { return [] }
        switch node.value {
        case let .mapping(pairs):
            return pairs.flatMap { pair in flatten(pair.value, prefix: prefix.isEmpty ? (pair.key.scalar ?? "") : "\(prefix).\(pair.key.scalar ?? "")") }
        case let .sequence(items):
            return [(prefix, "{" + items.compactMap(\.scalar).joined(separator: ",") + "}")]
        case let .scalar(text, _):
            return [(prefix, text)]
        }
    }
}
