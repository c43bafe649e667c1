import Foundation

/// Reads an inventory file into `Inventory`, collecting every diagnostic instead of stopping at the
/// first. Cross-field rules (duplicates, CIDRs, quorum, disk safety) live in `InventoryChecks`.
public struct InventoryParser {
    public static let apiVersion = "provision/v1"

    /// `v1.13.0` or `v1.13.0-beta.1`: installer and schematic URLs need the exact version.
    static func isVersion(_ text: String) -> Bool {
        guard text.hasPrefix("v") else { return false }
        let parts = text.dropFirst().split(separator: "-", maxSplits: 1)
        guard let core = parts.first else { return false }
        let numbers = core.split(separator: ".", omittingEmptySubsequences: false)
        let suffixOK = parts.count == 1 || parts[1].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") }
        return numbers.count == 3 && numbers.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) } && suffixOK
    }

    /// A DNS label: it becomes a hostname, a VM name and a tag value.
    static func isName(_ text: String) -> Bool {
        guard (1...63).contains(text.count), text.first != "-", text.last != "-" else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    let collector: DiagnosticCollector
    let file: String

    /// Loads and validates; throws `InputError` with every error, returns warnings alongside.
    public static func load(path: String, loader: YAMLLoader = YAMLLoader()) throws(InputError) -> (Inventory, [Diagnostic]) {
        let root = try loader.load(path: path)
        let collector = DiagnosticCollector()
        let parser = InventoryParser(collector: collector, file: path)
        let inventory = parser.parse(root)
        if let inventory { InventoryChecks(inventory: inventory, collector: collector).run() }
        guard let inventory, !collector.hasErrors else { throw InputError(collector.sorted) }
        return (inventory, collector.sorted)
    }

    func parse(_ root: YAMLNode) -> Inventory? {
        guard let top = MappingReader(root, path: "", collector: collector) else { return nil }
        if let api = top.string("apiVersion", required: true, hint: "add `apiVersion: \(Self.apiVersion)` as the first line"),
           api.value != Self.apiVersion {
            collector.error("inventory.api-version", at: api.location, "unsupported apiVersion `\(api.value)`",
                            fix: "this provision reads `apiVersion: \(Self.apiVersion)`")
        }
        if let kind = top.string("kind", required: true, hint: "add `kind: Inventory`"), kind.value != "Inventory" {
            collector.error("inventory.kind", at: kind.location, "`kind` is `\(kind.value)`, expected `Inventory`",
                            fix: "a playbook goes under playbooks/; an inventory says `kind: Inventory`")
        }
        let cluster = top.mapping("cluster", required: true).flatMap(parseCluster)
        let cni = parseCNI(top.mapping("cni"), at: root.location)
        let secrets = parseSecrets(top.mapping("secrets", required: true, hint: "add a `secrets:` block saying how the Talos secrets bundle is encrypted"))
        let foundation = parseFoundation(top.mapping("foundation"), at: root.location)
        let providers = parseNamedMappings(top.mapping("providers", required: true), parseProvider)
        let images = parseNamedMappings(top.mapping("images", required: true), parseImage)
        let nodes = (top.list("nodes", required: true) ?? []).enumerated().compactMap { parseNode($1, index: $0) }
        let pools = (top.list("gpuPools") ?? []).enumerated().compactMap { parsePool($1, index: $0) }
        let lab = top.mapping("lab").flatMap(parseLab)
        let backup = top.mapping("backup").flatMap { parseBackup($0, secrets: secrets) }
        let state = top.mapping("state").flatMap { parseState($0, hasBackup: backup != nil) }
        top.finish()
        guard let cluster, let secrets else { return nil }
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        return Inventory(name: stem, file: file, cluster: cluster, cni: cni, secrets: secrets, foundation: foundation,
                         providers: providers, images: images, nodes: nodes, gpuPools: pools, lab: lab, root: root, backup: backup, state: state)
    }

    // MARK: - Blocks

    func parseCluster(_ r: MappingReader) -> ClusterSpec? {
        let name = r.string("name", required: true)
        let talos = version(r, "talosVersion", required: true)
        let kube = version(r, "kubernetesVersion", required: true)
        let endpoint = r.parsed("endpoint", required: true, expected: "an https URL such as https://192.168.30.10:6443") { text in
            text.hasPrefix("https://") && text.count > 8 ? text : nil
        }
        let vip = ipv4(r, "vip")
        let talosEndpoints = (r.stringList("talosEndpoints") ?? []).compactMap { item -> Located<IPv4Address>? in
            guard let address = IPv4Address(item.value) else {
                collector.error("value.invalid", at: item.location, "`\(item.value)` is not an IPv4 address",
                                fix: "list the control planes' own addresses")
                return nil
            }
            return Located(address, at: item.location)
        }
        let pod = cidr(r, "podCIDR", fallback: "10.244.0.0/16")
        let service = cidr(r, "serviceCIDR", fallback: "10.96.0.0/12")
        let nodeCIDR = cidr(r, "nodeCIDR", required: true)
        let gateway = ipv4(r, "gateway", required: true)
        let nameservers = (r.stringList("nameservers") ?? []).compactMap { item -> Located<IPv4Address>? in
            guard let address = IPv4Address(item.value) else {
                collector.error("value.invalid", at: item.location, "nameserver `\(item.value)` is not an IPv4 address", fix: "write an address such as 1.1.1.1")
                return nil
            }
            return Located(address, at: item.location)
        }
        let scan = r.bool("maintenanceScan")
        var cpPatches: [YAMLNode] = [], workerPatches: [YAMLNode] = []
        if let patches = r.mapping("patches") {
            cpPatches = patches.list("controlplane") ?? []
            workerPatches = patches.list("worker") ?? []
            patches.finish()
        }
        r.finish()
        guard let name, let talos, let kube, let endpoint, let pod, let service, let nodeCIDR, let gateway else { return nil }
        if !Self.isName(name.value) {
            collector.error("value.invalid", at: name.location, "cluster name `\(name.value)` is not a DNS label",
                            fix: "use lower-case letters, digits and dashes")
        }
        return ClusterSpec(name: name, talosVersion: talos, kubernetesVersion: kube, endpoint: endpoint, vip: vip,
                           talosEndpoints: talosEndpoints, podCIDR: pod, serviceCIDR: service, nodeCIDR: nodeCIDR,
                           gateway: gateway, nameservers: nameservers, controlPlanePatches: cpPatches, workerPatches: workerPatches,
                           maintenanceScan: scan)
    }

    func parseCNI(_ r: MappingReader?, at location: SourceLocation) -> CNISpec {
        guard let r else {
            return CNISpec(kind: Located(.cilium, at: location), version: nil, hubble: false, kubeProxyReplacement: true,
                           apiServer: Located("kubeprism", at: location), values: nil)
        }
        let kind = r.choice("kind", CNISpec.Kind.allCases.map(\.rawValue)).flatMap { k in CNISpec.Kind(rawValue: k.value).map { Located($0, at: k.location) } }
        let version = r.string("version")
        let hubble = r.bool("hubble")?.value ?? false
        let kpr = r.bool("kubeProxyReplacement")?.value ?? true
        let api = r.choice("apiServer", ["kubeprism", "endpoint"]) ?? Located("kubeprism", at: r.location)
        let values = r.node("values")
        if let values, case .mapping = values.value {} else if let values {
            collector.error("type.mismatch", at: values.location, "`cni.values` must be a mapping of Helm values", fix: "indent the values under `values:`")
        }
        r.finish()
        return CNISpec(kind: kind ?? Located(.cilium, at: r.location), version: version, hubble: hubble,
                       kubeProxyReplacement: kpr, apiServer: api, values: values)
    }

    func parseSecrets(_ r: MappingReader?) -> SecretsSpec? {
        guard let r else { return nil }
        let encryption = r.choice("encryption", SecretsSpec.Encryption.allCases.map(\.rawValue), required: true)
        let recipients = r.stringList("recipients") ?? []
        let identity = credential(r, "identity")
        let importFrom = r.string("importFrom")
        r.finish()
        guard let encryption, let mode = SecretsSpec.Encryption(rawValue: encryption.value) else { return nil }
        for recipient in recipients where !recipient.value.hasPrefix("age1") || recipient.value.count < 60 {
            collector.error("secrets.recipient", at: recipient.location, "`\(recipient.value)` is not an age X25519 recipient",
                            fix: "paste the public key printed by `age-keygen -y IDENTITY` (it starts with age1)")
        }
        if mode == .age {
            if recipients.isEmpty {
                collector.error("field.required", at: r.location, "`secrets` uses age encryption but lists no `recipients`",
                                fix: "add `recipients: [age1…]`, the public keys allowed to decrypt the bundle")
            }
            if identity == nil {
                collector.error("field.required", at: r.location, "`secrets` uses age encryption but has no `identity`",
                                fix: "add `identity: file:~/.config/provision/age.key` (or env:VAR) to decrypt the bundle")
            }
        } else {
            collector.warning("secrets.plaintext", at: encryption.location,
                              "the Talos secrets bundle will be stored unencrypted (mode 0600)",
                              fix: "prefer `encryption: age` with recipients, unless this is a throwaway cluster")
        }
        return SecretsSpec(encryption: Located(mode, at: encryption.location), recipients: recipients, identity: identity, importFrom: importFrom)
    }

    func parseFoundation(_ r: MappingReader?, at location: SourceLocation) -> FoundationSpec {
        guard let r else {
            return FoundationSpec(kind: Located(.none, at: location), credentials: [:], namespace: Located("", at: location),
                                  vault: nil, externalSecretsVersion: nil, connectVersion: nil)
        }
        let kindText = r.choice("kind", FoundationSpec.Kind.allCases.map(\.rawValue), required: true)
        let kind = kindText.flatMap { FoundationSpec.Kind(rawValue: $0.value) } ?? .none
        var credentials: [String: Located<CredentialReference>] = [:]
        var vault: Located<String>?
        let defaultNamespace: String
        switch kind {
        case .onepassword:
            credentials["credentials"] = credential(r, "credentials", required: true)
            credentials["token"] = credential(r, "token", required: true)
            vault = r.string("vault", required: true, hint: "name the 1Password vault the ClusterSecretStore reads")
            defaultNamespace = "external-secrets"
        case .sopsAge:
            credentials["key"] = credential(r, "key", required: true)
            defaultNamespace = "flux-system"
        case .none:
            defaultNamespace = ""
        }
        let namespace = r.string("namespace") ?? Located(defaultNamespace, at: r.location)
        let eso = r.string("externalSecretsVersion")
        let connect = r.string("connectVersion")
        r.finish()
        return FoundationSpec(kind: Located(kind, at: kindText?.location ?? r.location), credentials: credentials.compactMapValues { $0 },
                              namespace: namespace, vault: vault, externalSecretsVersion: eso, connectVersion: connect)
    }

    func parseProvider(name: Located<String>, _ r: MappingReader) -> ProviderSpec? {
        guard let kindText = r.choice("kind", ProviderSpec.Kind.allCases.map(\.rawValue), required: true),
              let kind = ProviderSpec.Kind(rawValue: kindText.value) else {
            r.allow(contentsOf: r.keys.map(\.value))
            r.finish()
            return nil
        }
        let schema = ProviderSchema.forKind(kind)
        var settings: [String: Located<String>] = [:]
        for setting in schema.settings {
            guard let value = r.string(setting.key, required: setting.required) else {
                if let fallback = setting.defaultValue { settings[setting.key] = Located(fallback, at: r.location) }
                continue
            }
            if let expected = ProviderSchema.check(setting.format, value.value) {
                collector.error("value.invalid", at: value.location, "`providers.\(name.value).\(setting.key)` is `\(value.value)`, which is not \(expected)",
                                fix: "write \(expected)")
            } else {
                settings[setting.key] = value
            }
        }
        var credentials: [String: Located<CredentialReference>] = [:]
        for key in schema.credentials {
            if let ref = credential(r, key) { credentials[key] = ref }
        }
        for group in schema.requiredCredentials where !group.contains(where: { credentials[$0] != nil }) {
            collector.error("field.required", at: r.location, "provider `\(name.value)` needs `\(group.joined(separator: "` or `"))`",
                            fix: "add `\(group[0]): env:VARIABLE` (a reference, never the value)")
        }
        r.finish()
        return ProviderSpec(name: name, kind: Located(kind, at: kindText.location), endpoint: settings["endpoint"] ?? settings["uri"],
                            settings: settings, credentials: credentials, location: r.location)
    }

    func parseImage(name: Located<String>, _ r: MappingReader) -> ImageSpec? {
        let schematic = r.string("schematic", required: true, hint: "point at a schematic file such as images/proxmox-vm.yaml")
        let xdp = r.bool("xdpAcceleration")?.value ?? true
        let kexec = r.bool("kexec")?.value ?? true
        let encryption = r.choice("diskEncryption", ["none", "nodeID", "tpm"]) ?? Located("none", at: r.location)
        let platform = r.choice("platform", ["metal", "nocloud", "aws"]) ?? Located("metal", at: r.location)
        r.finish()
        guard let schematic else { return nil }
        let path = resolve(schematic.value)
        if !FileManager.default.fileExists(atPath: path) {
            collector.error("image.schematic-missing", at: schematic.location, "schematic file `\(schematic.value)` does not exist (looked at \(path))",
                            fix: "create it, or point at one of the files under images/")
        }
        return ImageSpec(name: name, schematic: schematic, xdpAcceleration: xdp, kexec: kexec, diskEncryption: encryption, platform: platform)
    }

    func parseNode(_ node: YAMLNode, index: Int) -> NodeSpec? {
        guard let r = MappingReader(node, path: "nodes[\(index)]", collector: collector) else { return nil }
        let name = r.string("name", required: true)
        let role = r.choice("role", NodeRole.allCases.map(\.rawValue), required: true)
        let image = r.string("image", required: true, hint: "name a hardware class from `images:`")
        let address = ipv4(r, "address", required: true)
        let hostname = r.string("hostname")
        let talos = version(r, "talosVersion")
        let machine = r.mapping("machine", required: true).flatMap(parseMachine)
        var installDisk: Located<String>?, selector: DiskSelector?, wipe = false, allowRemovable = false
        if let install = r.mapping("install", required: true, hint: "add `install: {disk: /dev/sda}` or a `diskSelector`") {
            installDisk = install.string("disk")
            if let sel = install.mapping("diskSelector") {
                var fields: [String: Located<String>] = [:]
                for key in ["size", "name", "model", "serial", "modalias", "uuid", "wwid", "type", "busPath"] {
                    if let value = sel.string(key) { fields[key] = value }
                }
                if let type = fields["type"], !["ssd", "hdd", "nvme", "sd"].contains(type.value) {
                    collector.error("value.invalid", at: type.location, "disk type `\(type.value)` is not one of ssd, hdd, nvme, sd",
                                    fix: "use a type Talos knows")
                }
                sel.finish()
                selector = DiskSelector(fields: fields, location: sel.location)
            }
            wipe = install.bool("wipe")?.value ?? false
            allowRemovable = install.bool("allowRemovable")?.value ?? false
            if installDisk == nil, selector == nil {
                collector.error("node.install-disk", at: install.location, "no install disk: set `disk` or `diskSelector`",
                                fix: "name the disk (e.g. `disk: /dev/nvme0n1`) or select it by `serial`/`wwid`")
            }
            if let disk = installDisk, selector != nil {
                collector.error("node.install-disk", at: disk.location, "both `disk` and `diskSelector` are set", fix: "keep one of them")
            }
            install.finish()
        }
        let kubespan = r.bool("kubespan")?.value ?? false
        var labels: [String: String] = [:]
        if let l = r.mapping("labels") {
            for key in l.keys { labels[key.value] = l.string(key.value)?.value ?? "" }
            l.finish()
        }
        let patches = r.list("patches") ?? []
        for patch in patches { checkPatch(patch) }
        r.finish()
        guard let name, let roleText = role, let role = NodeRole(rawValue: roleText.value), let image, let address, let machine else { return nil }
        checkName(name, what: "node")
        return NodeSpec(name: name, role: Located(role, at: roleText.location), image: image, address: address,
                        hostname: hostname?.value ?? name.value, talosVersion: talos, machine: machine, installDisk: installDisk,
                        diskSelector: selector, wipe: wipe, allowRemovableDisk: allowRemovable, kubespan: kubespan,
                        labels: labels, patches: patches, location: r.location)
    }

    func parseMachine(_ r: MappingReader) -> MachineSpec? {
        let provider = r.string("provider", required: true, hint: "name one of the `providers:`")
        let cpus = r.int("cpus", range: 1...512)
        let memory = r.parsed("memory", expected: "a size such as 8GiB", SizeText.parse)
        let disk = r.parsed("disk", expected: "a size such as 64GiB", SizeText.parse)
        let mac = r.parsed("mac", expected: "a MAC address such as bc:24:11:00:00:01", MACAddress.init)
        if let mac, mac.value.isMulticast {
            collector.error("value.invalid", at: mac.location, "MAC \(mac.value) is a multicast address", fix: "use a unicast MAC (first byte even), e.g. bc:24:11:…")
        }
        let bridge = r.string("bridge")
        let vlan = r.int("vlan", range: 1...4094)
        let id = r.string("id")
        let storage = r.string("storage")
        let link = r.string("link")
        if let link, !Self.isLinkName(link.value) {
            collector.error("value.invalid", at: link.location, "`\(link.value)` is not a kernel link name",
                            fix: "write the name Talos lists for the NIC (`provision probe` in maintenance), e.g. enp3s0f0")
        }
        r.finish()
        guard let provider else { return nil }
        return MachineSpec(provider: provider, cpus: cpus, memory: memory, diskSize: disk, mac: mac, bridge: bridge, vlan: vlan, id: id, storage: storage,
                           link: link)
    }

    func parsePool(_ node: YAMLNode, index: Int) -> GPUPoolSpec? {
        guard let r = MappingReader(node, path: "gpuPools[\(index)]", collector: collector) else { return nil }
        let name = r.string("name", required: true)
        let provider = r.string("provider", required: true, hint: "name an `aws` provider")
        let image = r.string("image", required: true, hint: "name a hardware class from `images:`, e.g. aws-gpu")
        let type = r.string("instanceType", required: true, hint: "e.g. g5.xlarge")
        let ami = r.string("ami")
        let market = r.choice("market", GPUPoolSpec.Market.allCases.map(\.rawValue)) ?? Located("on-demand", at: r.location)
        let count = r.int("count", range: 1...16)?.value ?? 1
        let maxLifetime = duration(r, "maxLifetime", required: true)
        let idle = duration(r, "idleTimeout")
        let ttl = duration(r, "defaultTTL") ?? Located(.seconds(4 * 3600), at: r.location)
        let subnet = r.string("subnet")
        let groups = r.stringList("securityGroups") ?? []
        let owner = r.string("owner")
        let rootVolume = r.parsed("rootVolume", expected: "a size such as 100GiB", SizeText.parse)
        if let rootVolume, !GPUPoolSpec.rootVolumeRange.contains(rootVolume.value) {
            collector.error("value.out-of-range", at: rootVolume.location, "`rootVolume` must be between 20GiB (the Talos AMI's own root) and 16TiB (gp3's largest)",
                            fix: "e.g. `rootVolume: 100GiB`; CUDA images need tens of GiB each")
        }
        var up: Located<String>?, down: Located<String>?
        if let schedule = r.mapping("schedule") {
            up = schedule.string("up")
            down = schedule.string("down")
            for entry in [up, down].compactMap({ $0 }) where !Self.isCron(entry.value) {
                collector.error("value.invalid", at: entry.location, "`\(entry.value)` is not a 5-field cron expression",
                                fix: "write minute hour day month weekday, e.g. `0 18 * * 5`")
            }
            schedule.finish()
        }
        r.finish()
        guard let name, let provider, let image, let type, let maxLifetime else { return nil }
        checkName(name, what: "GPU pool")
        if ttl.value > maxLifetime.value {
            collector.error("pool.ttl", at: ttl.location, "defaultTTL \(DurationText.format(ttl.value)) exceeds maxLifetime \(DurationText.format(maxLifetime.value))",
                            fix: "lower defaultTTL or raise maxLifetime")
        }
        return GPUPoolSpec(name: name, provider: provider, image: image, instanceType: type, ami: ami,
                           market: Located(GPUPoolSpec.Market(rawValue: market.value) ?? .onDemand, at: market.location),
                           count: count, maxLifetime: maxLifetime, idleTimeout: idle, defaultTTL: ttl, subnet: subnet,
                           securityGroups: groups, owner: owner, scheduleUp: up, scheduleDown: down, location: r.location, rootVolume: rootVolume)
    }

    /// Linux's rule for an interface name (`dev_valid_name`): 1-15 bytes, no `/`, `:` or space.
    static func isLinkName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".." && !name.contains(where: { "/: \t".contains($0) })
    }

    public static let labFaults = ["never-boots", "slow-install", "api-flaps", "refuses-apply", "etcd-unhealthy", "etcd-alarm", "pull-fails", "upgrade-fails-boot", "disk-holds-macos", "mac-typo"]

    func parseLab(_ r: MappingReader) -> LabSpec? {
        let scale = r.double("timeScale") ?? Located(1, at: r.location)
        if scale.value < 0 || scale.value > 100 {
            collector.error("value.out-of-range", at: scale.location, "`lab.timeScale` must be between 0 and 100", fix: "0 runs the simulation instantly, 1 in real time")
        }
        var faults: [LabSpec.Fault] = []
        for (index, item) in (r.list("faults") ?? []).enumerated() {
            guard let f = MappingReader(item, path: "lab.faults[\(index)]", collector: collector) else { continue }
            let node = f.string("node", required: true)
            let kind = f.choice("fault", Self.labFaults, required: true)
            f.finish()
            if let node, let kind { faults.append(LabSpec.Fault(node: node, kind: kind)) }
        }
        let directory = r.string("directory")
        var delays = LabDelays()
        if let d = r.mapping("delays") {
            for (key, field) in LabDelays.fields {
                if let value = duration(d, key) { delays[keyPath: field] = value.value }
            }
            d.finish()
        }
        let dhcp = r.mapping("dhcp").map(parseLabDHCP) ?? LabDHCP()
        let wakers = r.stringList("wakeFromPowerOff") ?? []
        r.finish()
        var lab = LabSpec(timeScale: scale, faults: faults, directory: directory, delays: delays)
        lab.dhcp = dhcp
        lab.wakeFromPowerOff = wakers
        return lab
    }

    /// `lab.dhcp: {pool: FIRST-LAST, reservations: [{node, address}]}`.
    func parseLabDHCP(_ r: MappingReader) -> LabDHCP {
        var dhcp = LabDHCP()
        if let pool = r.string("pool") {
            let ends = pool.value.split(separator: "-").map { IPv4Address(String($0).trimmingCharacters(in: .whitespaces)) }
            if ends.count == 2, let first = ends[0], let last = ends[1], first <= last {
                dhcp.pool = (Located(first, at: pool.location), Located(last, at: pool.location))
            } else {
                collector.error("value.invalid", at: pool.location, "`lab.dhcp.pool` must be FIRST-LAST, two IPv4 addresses in order",
                                fix: "write a range such as 127.0.0.100-127.0.0.199")
            }
        }
        if let items = r.list("reservations") {
            dhcp.reservations = items.enumerated().compactMap { index, item in
                guard let m = MappingReader(item, path: "lab.dhcp.reservations[\(index)]", collector: collector) else { return nil }
                let node = m.string("node", required: true)
                let address = ipv4(m, "address", required: true)
                m.finish()
                guard let node, let address else { return nil }
                return LabDHCP.Reservation(node: node, address: address)
            }
        }
        r.finish()
        return dhcp
    }

    // MARK: - Field helpers

    func parseNamedMappings<T>(_ r: MappingReader?, _ parse: (Located<String>, MappingReader) -> T?) -> [T] {
        guard let r else { return [] }
        var result: [T] = []
        for key in r.keys {
            guard let value = r.mapping(key.value) else { continue }
            checkName(key, what: "name")
            if let item = parse(key, value) { result.append(item) }
        }
        r.finish()
        return result
    }

    func credential(_ r: MappingReader, _ key: String, required: Bool = false) -> Located<CredentialReference>? {
        guard let text = r.string(key, required: required, hint: "write \(CredentialReference.formats)") else { return nil }
        guard let ref = CredentialReference(text.value) else {
            collector.error("credential.inline", at: text.location,
                            "`\(r.path).\(key)` must be a reference to a secret, not the secret itself",
                            fix: "move the value into an environment variable or a 0600 file and write \(CredentialReference.formats)")
            return nil
        }
        return Located(ref, at: text.location)
    }

    func version(_ r: MappingReader, _ key: String, required: Bool = false) -> Located<String>? {
        r.parsed(key, required: required, expected: "a full version such as v1.13.0") { text in
            Self.isVersion(text) ? text : nil
        }
    }

    func ipv4(_ r: MappingReader, _ key: String, required: Bool = false) -> Located<IPv4Address>? {
        r.parsed(key, required: required, expected: "an IPv4 address such as 192.168.30.11", IPv4Address.init)
    }

    func cidr(_ r: MappingReader, _ key: String, required: Bool = false, fallback: String? = nil) -> Located<IPv4Network>? {
        if let value = r.parsed(key, required: required, expected: "a CIDR such as 192.168.30.0/24", IPv4Network.init) { return value }
        return fallback.flatMap(IPv4Network.init).map { Located($0, at: r.location) }
    }

    func duration(_ r: MappingReader, _ key: String, required: Bool = false) -> Located<Duration>? {
        r.parsed(key, required: required, expected: "a duration such as 8h or 30m", DurationText.parse)
    }

    func checkName(_ name: Located<String>, what: String) {
        if !Self.isName(name.value) {
            collector.error("value.invalid", at: name.location, "\(what) `\(name.value)` is not a valid name",
                            fix: "use lower-case letters, digits and dashes (it becomes a hostname)")
        }
    }

    func checkPatch(_ patch: YAMLNode) {
        switch patch.value {
        case .mapping: break
        case .scalar:
            let path = resolve(patch.scalar ?? "")
            if !FileManager.default.fileExists(atPath: path) {
                collector.error("patch.missing", at: patch.location, "patch file `\(patch.scalar ?? "")` does not exist", fix: "create it or fix the path")
            }
        case .sequence:
            collector.error("type.mismatch", at: patch.location, "a patch must be a mapping or a file path", fix: "write the patch inline as YAML, or give a path")
        }
    }

    /// Paths in an inventory are relative to the inventory file's folder, like Terraform and Ansible.
    func resolve(_ relative: String) -> String {
        Inventory.resolve(relative, inventoryFile: file)
    }

    static func isCron(_ text: String) -> Bool {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count == 5 && fields.allSatisfy { $0.allSatisfy { "0123456789*/,-".contains($0) } }
    }
}

extension MappingReader {
    func allow(contentsOf keys: [String]) { for key in keys { allow(key) } }
}
