import Foundation
import ProvisionCore

/// Renders each node's Talos machine config from the secrets bundle and the inventory, applies the
/// role and node patches, and checks every document against the schema of the node's Talos version.
public struct MachineConfigRenderer: Sendable {
    public let bundle: SecretsBundle
    public let inventory: Inventory
    /// Schematic ID per hardware class (images:), for installer image references.
    public let schematics: [String: String]
    /// The Kubernetes the cluster runs (its state); nil renders the inventory's `kubernetesVersion`.
    public var kubernetes: KubernetesVersions?

    public init(bundle: SecretsBundle, inventory: Inventory) throws(ConfigError) {
        self.bundle = bundle
        self.inventory = inventory
        var ids: [String: String] = [:]
        for image in inventory.images {
            let path = Inventory.resolve(image.schematic.value, inventoryFile: inventory.file)
            do { ids[image.name.value] = try SchematicParser.load(path: path).id } catch {
                throw ConfigError.input(error.description)
            }
        }
        schematics = ids
    }

    /// The node label a GPU pool's workers carry: how their Nodes are found once the instance is
    /// gone (EC2 forgets terminated instances within the hour; a Node can outlive that).
    public static let gpuPoolLabel = "provision.dev/gpu-pool"

    /// A node's or a GPU pool's role in the config.
    public struct Target: Sendable {
        public var name: String
        public var role: NodeRole
        public var talosVersion: String
        public var image: ImageSpec
        public var node: NodeSpec?
        public var gpu: Bool
    }

    public func target(node: NodeSpec) -> Target {
        Target(name: node.name.value, role: node.role.value, talosVersion: node.talosVersion?.value ?? inventory.cluster.talosVersion.value,
               image: inventory.image(named: node.image.value)!, node: node, gpu: false)
    }

    public func target(pool: GPUPoolSpec) -> Target {
        Target(name: pool.name.value, role: .worker, talosVersion: inventory.cluster.talosVersion.value,
               image: inventory.image(named: pool.image.value)!, node: nil, gpu: true)
    }

    /// The documents of one target's config, patched and validated.
    public func render(_ target: Target) throws(ConfigError) -> [ConfigValue] {
        let schema = try ConfigSchema.forVersion(target.talosVersion)
        var documents = [baseDocument(target)] + extraDocuments(target, minor: schema.version)
        let rolePatches = target.role == .controlplane ? inventory.cluster.controlPlanePatches : inventory.cluster.workerPatches
        for patch in rolePatches + (target.node?.patches ?? []) {
            documents = try apply(patch, to: documents)
        }
        var problems: [String] = []
        for document in documents {
            let kind = document["kind"]?.stringValue ?? "v1alpha1"
            problems += schema.problems(in: document).map { "\(kind): \($0)" }
        }
        if !problems.isEmpty { throw ConfigError.invalid(node: target.name, problems: problems) }
        return documents
    }

    /// The whole config as one multi-document YAML text.
    public func yaml(_ target: Target) throws(ConfigError) -> String {
        try render(target).map(\.yaml).joined(separator: "---\n")
    }

    // MARK: - The v1alpha1 document

    func baseDocument(_ target: Target) -> ConfigValue {
        let cluster = inventory.cluster
        let cp = target.role == .controlplane
        func kube(_ component: KubernetesVersions.Component) -> String {
            kubernetes?.version(of: component, node: target.name) ?? cluster.kubernetesVersion.value
        }
        let cilium = inventory.cni.kind.value == .cilium
        let installer = ImageURLs(schematicID: schematics[target.image.name.value] ?? "", version: target.talosVersion,
                                  platform: target.image.platform.value).installer
        var install: ConfigValue?
        if let node = target.node {
            install = .object([
                "disk": node.installDisk.map { .string($0.value) },
                "diskSelector": node.diskSelector.map { selector in
                    .map(selector.fields.sorted { $0.key < $1.key }.map { ConfigValue.Entry($0.key, .string($0.value.value)) })
                },
                "image": .string(installer),
                "wipe": .bool(node.wipe),
                "grubUseUKICmdline": .bool(true),
            ])
        } else {
            install = .object(["image": .string(installer)])
        }
        var sysctls: [ConfigValue.Entry] = []
        if !target.image.kexec { sysctls.append(.init("kernel.kexec_load_disabled", .string("1"))) }
        let modules: ConfigValue? = target.gpu
            ? .list(["nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset"].map { .object(["name": .string($0)]) })
            : nil
        var nodeLabels = target.node?.labels ?? [:]
        if target.gpu { nodeLabels[Self.gpuPoolLabel] = target.name }
        let labels = nodeLabels.sorted { $0.key < $1.key }.map { ConfigValue.Entry($0.key, .string($0.value)) }
        let sans = ([target.node?.address.value.description, target.node?.hostname].compactMap { $0 }).map(ConfigValue.string)
        let legacyKubeSpan = !target.talosVersion.hasPrefix("v1.13") && kubespanEnabled
        let machine = ConfigValue.object([
            "type": .string(target.role.rawValue),
            "token": .string(bundle.trustdToken),
            "ca": .object(["crt": .string(bundle.os.crt), "key": .string(cp ? bundle.os.key : "")]),
            "certSANs": sans.isEmpty ? nil : .list(sans),
            "kubelet": .object([
                "image": .string("ghcr.io/siderolabs/kubelet:\(kube(.kubelet))"),
                "defaultRuntimeSeccompProfileEnabled": .bool(true),
                "disableManifestsDirectory": .bool(true),
                "nodeIP": target.gpu ? nil : .object(["validSubnets": .list([.string(cluster.nodeCIDR.value.description)])]),
            ]),
            "network": legacyKubeSpan ? .object(["kubespan": .object(["enabled": .bool(true)])]) : nil,
            "install": install,
            "features": .object([
                "diskQuotaSupport": .bool(true),
                "kubePrism": .object(["enabled": .bool(true), "port": .int(7445)]),
                "hostDNS": .object(["enabled": .bool(true), "forwardKubeDNSToHost": .bool(true)]),
            ]),
            "kernel": modules.map { .object(["modules": $0]) },
            "sysctls": sysctls.isEmpty ? nil : .map(sysctls),
            "nodeLabels": labels.isEmpty ? nil : .map(labels),
        ])
        let endpointHost = URLComponents(string: cluster.endpoint.value)?.host
        let apiSANs = [endpointHost, cluster.vip?.value.description].compactMap { $0 }.uniqued().map(ConfigValue.string)
        let network = ConfigValue.object([
            "dnsDomain": .string("cluster.local"),
            "podSubnets": .list([.string(cluster.podCIDR.value.description)]),
            "serviceSubnets": .list([.string(cluster.serviceCIDR.value.description)]),
            "cni": .object(["name": .string(inventory.cni.kind.value == .flannel ? "flannel" : "none")]),
        ])
        let discovery = ConfigValue.object([
            "enabled": .bool(true),
            "registries": .object(["kubernetes": .object(["disabled": .bool(true)]), "service": .object(["disabled": .bool(false)])]),
        ])
        let common: KeyValuePairs<String, ConfigValue?> = [
            "id": .string(bundle.clusterID),
            "secret": .string(bundle.clusterSecret),
            "controlPlane": .object(["endpoint": .string(cluster.endpoint.value)]),
            "clusterName": .string(cluster.name.value),
            "network": network,
            "token": .string(bundle.bootstrapToken),
        ]
        var clusterEntries = ConfigValue.object(common)
        if case var .map(entries) = clusterEntries {
            if cp {
                let proxy: ConfigValue = cilium && inventory.cni.kubeProxyReplacement
                    ? .object(["disabled": .bool(true)])
                    : .object(["image": .string("registry.k8s.io/kube-proxy:\(kube(.proxy))")])
                entries += [
                    .init("secretboxEncryptionSecret", .string(bundle.secretboxEncryptionSecret)),
                    .init("ca", .object(["crt": .string(bundle.k8s.crt), "key": .string(bundle.k8s.key)])),
                    .init("aggregatorCA", .object(["crt": .string(bundle.k8sAggregator.crt), "key": .string(bundle.k8sAggregator.key)])),
                    .init("serviceAccount", .object(["key": .string(bundle.k8sServiceAccountKey)])),
                    .init("apiServer", .object(["image": .string("registry.k8s.io/kube-apiserver:\(kube(.apiServer))"), "certSANs": .list(apiSANs)])),
                    .init("controllerManager", .object(["image": .string("registry.k8s.io/kube-controller-manager:\(kube(.controllerManager))")])),
                    .init("proxy", proxy),
                    .init("scheduler", .object(["image": .string("registry.k8s.io/kube-scheduler:\(kube(.scheduler))")])),
                    .init("discovery", discovery),
                    .init("etcd", .object(["ca": .object(["crt": .string(bundle.etcd.crt), "key": .string(bundle.etcd.key)])])),
                ]
            } else {
                entries += [
                    .init("ca", .object(["crt": .string(bundle.k8s.crt), "key": .string("")])),
                    .init("discovery", discovery),
                ]
            }
            clusterEntries = .map(entries)
        }
        return .object([
            "version": .string("v1alpha1"),
            "debug": .bool(false),
            "machine": machine,
            "cluster": clusterEntries,
        ])
    }

    /// KubeSpan must be on for every node once any node joins over the internet (GPU pools do).
    var kubespanEnabled: Bool { !inventory.gpuPools.isEmpty || inventory.nodes.contains { $0.kubespan } }

    // MARK: - Multi-document kinds

    func extraDocuments(_ target: Target, minor: String) -> [ConfigValue] {
        func doc(_ kind: String, _ rest: KeyValuePairs<String, ConfigValue?>) -> ConfigValue {
            var entries = [ConfigValue.Entry("apiVersion", .string("v1alpha1")), .init("kind", .string(kind))]
            if case let .map(more) = ConfigValue.object(rest) { entries += more }
            return .map(entries)
        }
        var documents: [ConfigValue] = []
        if let node = target.node {
            documents.append(doc("HostnameConfig", ["auto": .string("off"), "hostname": .string(node.hostname)]))
            if let mac = node.machine.mac {
                let link = "net0"
                documents.append(doc("LinkAliasConfig", ["name": .string(link),
                                                         "selector": .object(["match": .string("mac(link.permanent_addr) == \"\(mac.value)\"")])]))
                documents.append(doc("LinkConfig", [
                    "name": .string(link), "up": .bool(true),
                    "addresses": .list([.object(["address": .string("\(node.address.value)/\(inventory.cluster.nodeCIDR.value.prefix)")])]),
                    "routes": .list([.object(["gateway": .string(inventory.cluster.gateway.value.description)])]),
                ]))
                if target.role == .controlplane, let vip = inventory.cluster.vip {
                    documents.append(doc("Layer2VIPConfig", ["name": .string(vip.value.description), "link": .string(link)]))
                }
            }
            // Wake-on-LAN for a machine powered on by a magic packet: absent, Talos leaves the NIC as
            // it is (off on a Mac mini's tg3). By kernel name: ethtool resolves no aliases.
            if let link = node.machine.link {
                documents.append(doc("EthernetConfig", ["name": .string(link.value), "wakeOnLan": .list([.string("magic")])]))
            }
            if !inventory.cluster.nameservers.isEmpty {
                documents.append(doc("ResolverConfig", ["nameservers": .list(inventory.cluster.nameservers.map { .object(["address": .string($0.value.description)]) })]))
            }
        }
        if target.image.diskEncryption.value == "nodeID" || target.image.diskEncryption.value == "tpm" {
            let key: ConfigValue = target.image.diskEncryption.value == "tpm" ? .object(["tpm": .map([])]) : .object(["nodeID": .map([])])
            for (volume, lock) in [("STATE", false), ("EPHEMERAL", true)] {
                var slot = [ConfigValue.Entry("slot", .int(0))]
                if case let .map(kind) = key { slot += kind }
                if lock { slot.append(.init("lockToState", .bool(true))) }
                documents.append(doc("VolumeConfig", ["name": .string(volume),
                                                      "encryption": .object(["provider": .string("luks2"), "keys": .list([.map(slot)])])]))
            }
        }
        if kubespanEnabled, minor == "v1.13" {
            documents.append(doc("KubeSpanConfig", ["enabled": .bool(true)]))
        }
        return documents
    }

    // MARK: - Patches

    /// Applies one patch (inline mapping or a file of one or more documents) to the documents.
    func apply(_ patch: YAMLNode, to documents: [ConfigValue]) throws(ConfigError) -> [ConfigValue] {
        var patchDocuments: [(ConfigValue, SourceLocation)] = []
        if let path = patch.scalar {
            let file = Inventory.resolve(path, inventoryFile: inventory.file)
            let node: YAMLNode
            do { node = try YAMLLoader().load(path: file) } catch { throw ConfigError.input(error.description) }
            patchDocuments = [(ConfigValue(node), node.location)]
        } else {
            patchDocuments = [(ConfigValue(patch), patch.location)]
        }
        var result = documents
        for (patchDocument, location) in patchDocuments {
            let kind = patchDocument["kind"]?.stringValue
            let name = patchDocument["name"]?.stringValue
            let index = result.firstIndex { document in
                kind == nil ? document["version"] != nil : (document["kind"]?.stringValue == kind && (name == nil || document["name"]?.stringValue == name))
            }
            if case let .map(entries) = patchDocument, entries.contains(where: { $0.key == "$patch" && $0.value == .string("delete") }) {
                guard let index, kind != nil else {
                    throw ConfigError.patch(file: location.file, line: location.line, column: location.column,
                                            reason: "deletes document \(kind ?? "v1alpha1"), which is not in the config")
                }
                result.remove(at: index)
                continue
            }
            guard let index else {
                result.append(patchDocument)
                continue
            }
            do {
                result[index] = try StrategicMerge.merge(result[index], patchDocument)
            } catch {
                throw ConfigError.patch(file: location.file, line: location.line, column: location.column, reason: error.description)
            }
        }
        return result
    }
}
