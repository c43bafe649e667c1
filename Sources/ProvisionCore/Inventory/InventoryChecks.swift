/// Cross-field rules that protect a real cluster: unique names and addresses, sane networks, quorum,
/// and install-disk safety. Each finding names the line and the fix.
struct InventoryChecks {
    let inventory: Inventory
    let collector: DiagnosticCollector

    func run() {
        checkReferences()
        checkUniqueness()
        checkNetworks()
        checkControlPlanes()
        checkDisks()
        checkLab()
        checkMaintenanceScan()
        checkWakeOnLAN()
    }

    func checkReferences() {
        let providerNames = inventory.providers.map(\.name.value)
        let imageNames = inventory.images.map(\.name.value)
        for node in inventory.nodes {
            let ref = node.machine.provider
            if let provider = inventory.provider(named: ref.value) {
                if provider.kind.value == .aws {
                    collector.error("node.provider-kind", at: ref.location, "node `\(node.name.value)` uses AWS provider `\(ref.value)`; AWS machines belong in `gpuPools`",
                                    fix: "move it to gpuPools, or use a proxmox, libvirt or metal provider")
                }
                if provider.kind.value == .metal, node.machine.mac == nil {
                    collector.error("node.mac-required", at: node.location, "bare-metal node `\(node.name.value)` has no `machine.mac`; Wake-on-LAN needs it",
                                    fix: "add the NIC's MAC address under `machine:`")
                }
            } else {
                collector.error("reference.provider", at: ref.location, "provider `\(ref.value)` is not defined\(Suggestion.hint(for: ref.value, in: providerNames))",
                                fix: "define it under `providers:` or use one of: \(providerNames.joined(separator: ", "))")
            }
            if inventory.image(named: node.image.value) == nil {
                collector.error("reference.image", at: node.image.location, "image `\(node.image.value)` is not defined\(Suggestion.hint(for: node.image.value, in: imageNames))",
                                fix: "define it under `images:` or use one of: \(imageNames.joined(separator: ", "))")
            }
        }
        for pool in inventory.gpuPools {
            if let provider = inventory.provider(named: pool.provider.value) {
                if provider.kind.value != .aws {
                    collector.error("pool.provider-kind", at: pool.provider.location, "GPU pool `\(pool.name.value)` needs an `aws` provider, `\(pool.provider.value)` is \(provider.kind.value.rawValue)",
                                    fix: "point the pool at an aws provider")
                }
            } else {
                collector.error("reference.provider", at: pool.provider.location, "provider `\(pool.provider.value)` is not defined\(Suggestion.hint(for: pool.provider.value, in: providerNames))",
                                fix: "define it under `providers:`")
            }
            if inventory.image(named: pool.image.value) == nil {
                collector.error("reference.image", at: pool.image.location, "image `\(pool.image.value)` is not defined\(Suggestion.hint(for: pool.image.value, in: imageNames))",
                                fix: "define it under `images:`")
            }
        }
    }

    func checkUniqueness() {
        var names: [String: SourceLocation] = [:]
        for name in inventory.nodes.map(\.name) + inventory.gpuPools.map(\.name) {
            if let first = names[name.value] {
                collector.error("duplicate.name", at: name.location, "name `\(name.value)` is already used at line \(first.line)",
                                fix: "give every node and GPU pool its own name")
            } else {
                names[name.value] = name.location
            }
        }
        var addresses: [IPv4Address: (String, SourceLocation)] = [:]
        for node in inventory.nodes {
            let address = node.address
            if let (owner, first) = addresses[address.value] {
                collector.error("duplicate.address", at: address.location, "address \(address.value) is already used by `\(owner)` (line \(first.line))",
                                fix: "give every node its own address")
            } else {
                addresses[address.value] = (node.name.value, address.location)
            }
        }
        var macs: [MACAddress: (String, SourceLocation)] = [:]
        for node in inventory.nodes {
            guard let mac = node.machine.mac else { continue }
            if let (owner, first) = macs[mac.value] {
                collector.error("duplicate.mac", at: mac.location, "MAC \(mac.value) is already used by `\(owner)` (line \(first.line))",
                                fix: "every NIC needs its own MAC; DHCP reservations and WoL depend on it")
            } else {
                macs[mac.value] = (node.name.value, mac.location)
            }
        }
    }

    func checkNetworks() {
        let cluster = inventory.cluster
        let nets = [("podCIDR", cluster.podCIDR), ("serviceCIDR", cluster.serviceCIDR), ("nodeCIDR", cluster.nodeCIDR)]
        for (index, (name, net)) in nets.enumerated() {
            if net.value.hasHostBits {
                collector.warning("network.host-bits", at: net.location, "\(name) \(net.value) has host bits set; it means \(net.value.network)/\(net.value.prefix)",
                                  fix: "write \(net.value.network)/\(net.value.prefix)")
            }
            for (otherName, other) in nets[(index + 1)...] where net.value.overlaps(other.value) {
                collector.error("network.overlap", at: other.location, "\(otherName) \(other.value) overlaps \(name) \(net.value)",
                                fix: "pick ranges that do not overlap, e.g. pods 10.244.0.0/16 and services 10.96.0.0/12")
            }
        }
        let nodeNet = cluster.nodeCIDR.value
        if !nodeNet.contains(cluster.gateway.value) {
            collector.error("network.gateway-outside", at: cluster.gateway.location, "gateway \(cluster.gateway.value) is outside nodeCIDR \(nodeNet)",
                            fix: "use the router address of the node network")
        }
        if let vip = cluster.vip {
            if !nodeNet.contains(vip.value) {
                collector.error("network.vip-outside", at: vip.location, "VIP \(vip.value) is outside nodeCIDR \(nodeNet)",
                                fix: "a layer-2 VIP must be on the control planes' network")
            }
            if vip.value == cluster.gateway.value {
                collector.error("network.vip-gateway", at: vip.location, "VIP \(vip.value) equals the gateway", fix: "pick a free address for the VIP")
            }
            for endpoint in cluster.talosEndpoints where endpoint.value == vip.value {
                collector.error("cluster.vip-as-talos-endpoint", at: endpoint.location, "the VIP \(vip.value) is listed as a Talos API endpoint",
                                fix: "the VIP only exists while etcd is healthy; list the control planes' own addresses")
            }
            for node in inventory.nodes where node.address.value == vip.value {
                collector.error("network.vip-taken", at: node.address.location, "node `\(node.name.value)` uses the VIP \(vip.value) as its address",
                                fix: "give the node its own address")
            }
        }
        for node in inventory.nodes {
            let address = node.address
            if !nodeNet.contains(address.value) {
                collector.error("network.address-outside", at: address.location, "address \(address.value) of `\(node.name.value)` is outside nodeCIDR \(nodeNet)",
                                fix: "use an address in \(nodeNet), or widen nodeCIDR")
            } else if address.value == nodeNet.network || address.value == nodeNet.broadcast {
                collector.error("network.address-reserved", at: address.location, "address \(address.value) is the network or broadcast address of \(nodeNet)",
                                fix: "use a host address")
            }
            if address.value == cluster.gateway.value {
                collector.error("network.address-gateway", at: address.location, "address \(address.value) of `\(node.name.value)` is the gateway",
                                fix: "give the node its own address")
            }
        }
    }

    func checkControlPlanes() {
        // The static address and the VIP go on the link whose permanent MAC is the node's: without
        // one a control plane's config has neither, and with none the VIP never answers.
        if let vip = inventory.cluster.vip {
            for node in inventory.controlPlanes where node.machine.mac == nil {
                collector.error("node.mac-required-for-vip", at: node.location,
                                "control plane `\(node.name.value)` has no `machine.mac`: its static address and the cluster VIP \(vip.value) are put on the link with that MAC, so without one its config has neither",
                                fix: "add `machine.mac` (the NIC's own, permanent address) to `\(node.name.value)`")
            }
        }
        let count = inventory.controlPlanes.count
        let at = inventory.nodes.first?.location ?? inventory.root.location
        if count == 0 {
            collector.error("cluster.no-controlplane", at: at, "no node has `role: controlplane`", fix: "mark one or three nodes as controlplane")
        } else if count % 2 == 0 {
            collector.warning("cluster.even-controlplanes", at: inventory.controlPlanes[0].role.location,
                              "\(count) control planes tolerate no more failures than \(count - 1); etcd quorum needs \(count / 2 + 1)",
                              fix: "use an odd number of control planes (1, 3 or 5)")
        }
    }

    func checkDisks() {
        for node in inventory.nodes {
            let isMetal = inventory.provider(named: node.machine.provider.value)?.kind.value == .metal
            if let selector = node.diskSelector, !node.allowRemovableDisk {
                let f = selector.fields
                // A model glob with a vendor's literal prefix ("APPLE SSD*") names the internal disk: a USB
                // stick reports its own model.
                let model = f["model"].map { $0.value.prefix { $0 != "*" && $0 != "?" && $0 != "[" }.count >= 4 } ?? false
                let pinned = f["serial"] != nil || f["wwid"] != nil || f["uuid"] != nil || f["type"]?.value == "nvme" || model
                    || (f["busPath"].map { !$0.value.lowercased().contains("usb") } ?? false)
                if !pinned {
                    collector.error("disk.selector-may-match-usb", at: selector.location,
                                    "disk selector of `\(node.name.value)` could match a USB or removable disk",
                                    fix: "select by `serial`, `wwid`, `busPath` or a `model` with its vendor's prefix (\"APPLE SSD*\"), or `type: nvme`; set `install.allowRemovable: true` only if that is intended")
                }
                if f["type"]?.value == "sd" {
                    collector.error("disk.selector-may-match-usb", at: f["type"]!.location, "`type: sd` selects SD cards", fix: "select the internal disk")
                }
            }
            if let selector = node.diskSelector { checkSelectorCanMatch(selector, node: node) }
            if isMetal, let disk = node.installDisk, disk.value.hasPrefix("/dev/sd"), !node.allowRemovableDisk {
                collector.warning("disk.metal-sd-path", at: disk.location,
                                  "`\(disk.value)` on bare metal can be the USB boot stick, depending on enumeration order",
                                  fix: "use a `diskSelector` with `serial` or `wwid`, or a /dev/disk/by-id path")
            }
        }
    }

    /// Selectors that can be known offline to match no disk: fields Talos rejects, disk types a VM
    /// never has, sizes the inventory's own disk size cannot meet.
    func checkSelectorCanMatch(_ selector: DiskSelector, node: NodeSpec) {
        if let name = selector.fields["name"] {
            collector.error("disk.selector-unsupported", at: name.location, "Talos rejects disk selectors on `name`",
                            fix: "select by `serial`, `wwid`, `busPath`, `model` or `type`; or set `install.disk`")
        }
        let kind = inventory.provider(named: node.machine.provider.value)?.kind.value
        let isVM = kind == .proxmox || kind == .libvirt
        if isVM, let type = selector.fields["type"], type.value == "nvme" || type.value == "sd" {
            collector.error("disk.selector-matches-nothing", at: type.location,
                            "`type: \(type.value)` matches no disk of a \(kind!.rawValue) VM (its disks are virtio or SCSI)",
                            fix: "use `install.disk: /dev/sda` (virtio-scsi) or `/dev/vda` (virtio-blk), or `type: hdd`")
        }
        if let size = selector.fields["size"] {
            guard let bound = SizeBound(size.value) else {
                collector.error("value.invalid", at: size.location, "disk size selector `\(size.value)` is not a size such as `>= 120GB`",
                                fix: "write an optional operator (>=, <=, >, <, ==) and a size such as 120GB")
                return
            }
            if isVM, let disk = node.machine.diskSize, !bound.admits(disk.value) {
                collector.error("disk.selector-matches-nothing", at: size.location,
                                "`size: \(size.value)` cannot match the VM's own \(disk.value >> 30) GiB disk (machine.disk)",
                                fix: "change the size bound or machine.disk so they agree")
            }
        }
    }

    func checkLab() {
        guard let lab = inventory.lab else { return }
        let names = inventory.nodes.map(\.name.value)
        for fault in lab.faults where !names.contains(fault.node.value) {
            collector.error("reference.node", at: fault.node.location, "lab fault names unknown node `\(fault.node.value)`\(Suggestion.hint(for: fault.node.value, in: names))",
                            fix: "use a node name from `nodes:`")
        }
        let cidr = inventory.cluster.nodeCIDR.value
        for reservation in lab.dhcp.reservations ?? [] {
            if !names.contains(reservation.node.value) {
                collector.error("reference.node", at: reservation.node.location,
                                "lab DHCP reservation names unknown node `\(reservation.node.value)`\(Suggestion.hint(for: reservation.node.value, in: names))",
                                fix: "use a node name from `nodes:`")
            }
            if !cidr.contains(reservation.address.value) {
                collector.error("network.outside-cidr", at: reservation.address.location, "reserved address \(reservation.address.value) is outside nodeCIDR \(cidr)",
                                fix: "reserve an address in \(cidr)")
            }
        }
        let classes = inventory.images.map(\.name.value)
        for name in lab.wakeFromPowerOff where !classes.contains(name.value) {
            collector.error("reference.image", at: name.location, "`lab.wakeFromPowerOff` names unknown hardware class `\(name.value)`\(Suggestion.hint(for: name.value, in: classes))",
                            fix: "use a name from `images:`")
        }
        if let pool = lab.dhcp.pool, !(cidr.contains(pool.first.value) && cidr.contains(pool.last.value)) {
            collector.error("network.outside-cidr", at: pool.first.location, "the lab's DHCP pool is not inside nodeCIDR \(cidr)", fix: "give a range inside \(cidr)")
        }
    }

    /// A Mac mini is powered on only by a magic packet, and its NIC answers one only when Talos armed
    /// Wake-on-LAN: an `EthernetConfig` (Talos 1.12+) names the kernel link, never an alias.
    func checkWakeOnLAN() {
        for node in inventory.nodes where inventory.provider(named: node.machine.provider.value)?.kind.value == .metal {
            let version = node.talosVersion ?? inventory.cluster.talosVersion
            let armable = Self.minor(of: version.value).map { $0 >= (1, 12) } ?? true
            if armable, node.machine.link == nil {
                collector.error("node.wol-link", at: node.location,
                                "bare-metal node `\(node.name.value)` has no `machine.link`: Talos arms Wake-on-LAN only on a link named by its kernel name, so nothing could power it on",
                                fix: "boot it into maintenance and run `provision probe \(inventory.name)/\(node.name.value)` (or `talosctl get links --insecure -n ADDRESS`), then set `link:` under `machine:` to the NIC whose MAC is \(node.machine.mac?.value.description ?? "machine.mac"), e.g. `link: enp3s0f0`")
            } else if !armable {
                collector.warning("node.wol-unarmable", at: version.location,
                                  "Talos \(version.value) cannot arm Wake-on-LAN (EthernetConfig.wakeOnLan came in 1.12): `\(node.name.value)` wakes from a magic packet only if its firmware already does",
                                  fix: "pin it to v1.12 or later, or expect to press its power button")
            }
        }
    }

    /// `v1.12.6` -> (1, 12).
    static func minor(of version: String) -> (Int, Int)? {
        let parts = version.drop(while: { $0 == "v" }).split(separator: ".").prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    /// A scan looks at every address of `nodeCIDR`: bounded to a /24 (254 hosts), never wider.
    func checkMaintenanceScan() {
        guard let scan = inventory.cluster.maintenanceScan, scan.value else { return }
        let cidr = inventory.cluster.nodeCIDR.value
        if cidr.prefix < 24 {
            collector.error("network.scan-too-wide", at: scan.location,
                            "maintenanceScan looks at every address of nodeCIDR, and \(cidr) has \(1 << (32 - cidr.prefix)) addresses; it scans a /24 at most",
                            fix: "reserve each node's address on your router (MAC -> inventory address) and drop maintenanceScan, or narrow nodeCIDR")
        }
    }
}
