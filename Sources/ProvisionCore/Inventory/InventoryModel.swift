import Foundation

/// The parsed, validated inventory: what the cluster is and which machines make it.
/// Every field keeps its source location so later checks (and plans) can point at the line.
public struct Inventory: Sendable {
    /// The inventory's short name (`homelab` for `inventories/homelab.yaml`).
    public var name: String
    public var file: String
    public var cluster: ClusterSpec
    public var cni: CNISpec
    public var secrets: SecretsSpec
    public var foundation: FoundationSpec
    public var providers: [ProviderSpec]
    public var images: [ImageSpec]
    public var nodes: [NodeSpec]
    public var gpuPools: [GPUPoolSpec]
    public var lab: LabSpec?
    /// The raw document, for `when:` conditions and free-form blocks.
    public var root: YAMLNode
    public var backup: BackupSpec? = nil
    public var state: StateSpec? = nil
    /// Whether the lock, bundle and journal are shared through the backup bucket.
    public var sharesStateInBucket: Bool { state?.backend.value == .s3 }

    public func node(named name: String) -> NodeSpec? { nodes.first { $0.name.value == name } }
    public func provider(named name: String) -> ProviderSpec? { providers.first { $0.name.value == name } }
    public func image(named name: String) -> ImageSpec? { images.first { $0.name.value == name } }
    public func pool(named name: String) -> GPUPoolSpec? { gpuPools.first { $0.name.value == name } }
    /// The folder relative paths in this inventory are resolved against.
    public var directory: String { URL(fileURLWithPath: file).deletingLastPathComponent().path }

    public static func resolve(_ path: String, inventoryFile: String) -> String {
        PathText.resolve(path, relativeTo: URL(fileURLWithPath: inventoryFile).deletingLastPathComponent().path)
    }

    public var controlPlanes: [NodeSpec] { nodes.filter { $0.role.value == .controlplane } }

    /// Every credential reference in the file, so a run can resolve (and redact) them up front.
    public var credentialReferences: [Located<CredentialReference>] {
        var refs: [Located<CredentialReference>] = []
        refs += providers.flatMap { $0.credentials.values }
        refs += [secrets.identity].compactMap { $0 }
        refs += foundation.credentials.values
        refs += [backup?.accessKeyID, backup?.secretAccessKey, backup?.identity].compactMap { $0 }
        return refs
    }
}

public struct ClusterSpec: Sendable {
    public var name: Located<String>
    public var talosVersion: Located<String>
    public var kubernetesVersion: Located<String>
    /// The Kubernetes API URL clients use (often the VIP or a DNS name).
    public var endpoint: Located<String>
    /// Layer-2 shared address on the control planes; never a Talos API endpoint.
    public var vip: Located<IPv4Address>?
    /// Talos API endpoints for talosconfig; defaults to the control-plane addresses.
    public var talosEndpoints: [Located<IPv4Address>]
    public var podCIDR: Located<IPv4Network>
    public var serviceCIDR: Located<IPv4Network>
    public var nodeCIDR: Located<IPv4Network>
    public var gateway: Located<IPv4Address>
    public var nameservers: [Located<IPv4Address>]
    /// Strategic-merge patches applied to every node of a role.
    public var controlPlanePatches: [YAMLNode]
    public var workerPatches: [YAMLNode]
    /// Whether `talos.await-maintenance` may look for a node across `nodeCIDR` (a /24 at most) by
    /// its MAC when it is not at its inventory address: a node in maintenance has whatever address
    /// DHCP gave it until its config arrives. Off by default; a DHCP reservation makes it unneeded.
    public var maintenanceScan: Located<Bool>? = nil
}

public struct CNISpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case cilium, flannel, none }
    public var kind: Located<Kind>
    public var version: Located<String>?
    public var hubble: Bool
    public var kubeProxyReplacement: Bool
    /// How Cilium reaches the API server: KubePrism (localhost:7445) or the cluster endpoint.
    public var apiServer: Located<String>
    /// Extra Helm values, merged last.
    public var values: YAMLNode?
}

public struct SecretsSpec: Sendable {
    public enum Encryption: String, Sendable, CaseIterable { case age, plaintext }
    public var encryption: Located<Encryption>
    /// age X25519 recipients (`age1…`) that can decrypt the bundle.
    public var recipients: [Located<String>]
    /// Where the age identity that decrypts the bundle is read from.
    public var identity: Located<CredentialReference>?
    /// An existing talosctl/talhelper `secrets.yaml` to adopt instead of generating one.
    public var importFrom: Located<String>?
}

public struct FoundationSpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case onepassword
        case sopsAge = "sops-age"
        case none
    }
    public var kind: Located<Kind>
    /// Named credential references (`credentials`, `token` for 1Password; `key` for sops-age).
    public var credentials: [String: Located<CredentialReference>]
    public var namespace: Located<String>
    /// 1Password vault the ClusterSecretStore reads.
    public var vault: Located<String>?
    public var externalSecretsVersion: Located<String>?
    public var connectVersion: Located<String>?
}

public struct ProviderSpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case proxmox, libvirt, metal, aws
    }
    public var name: Located<String>
    public var kind: Located<Kind>
    /// Endpoint URL (Proxmox, AWS override) or libvirt URI.
    public var endpoint: Located<String>?
    /// Plain settings by key (node, storage, region, broadcast, …), validated per kind.
    public var settings: [String: Located<String>]
    public var credentials: [String: Located<CredentialReference>]
    public var location: SourceLocation

    public func setting(_ key: String) -> String? { settings[key]?.value }
}

public struct ImageSpec: Sendable {
    /// Hardware class name, e.g. `mac-mini`.
    public var name: Located<String>
    /// Path to the Image Factory schematic file (relative to the inventory's repository).
    public var schematic: Located<String>
    /// Per-hardware switches that shape Talos and Cilium config for this class.
    public var xdpAcceleration: Bool
    public var kexec: Bool
    public var diskEncryption: Located<String>
    public var platform: Located<String>
}

public enum NodeRole: String, Sendable, CaseIterable { case controlplane, worker }

public struct DiskSelector: Sendable {
    public var fields: [String: Located<String>]
    public var location: SourceLocation
}

public struct NodeSpec: Sendable {
    public var name: Located<String>
    public var role: Located<NodeRole>
    public var image: Located<String>
    public var address: Located<IPv4Address>
    public var hostname: String
    /// Per-node Talos version pin (e.g. Mac minis held at 1.12); nil = the cluster's.
    public var talosVersion: Located<String>?
    public var machine: MachineSpec
    public var installDisk: Located<String>?
    public var diskSelector: DiskSelector?
    public var wipe: Bool
    public var allowRemovableDisk: Bool
    public var kubespan: Bool
    public var labels: [String: String]
    public var patches: [YAMLNode]
    public var location: SourceLocation
}

public struct MachineSpec: Sendable {
    public var provider: Located<String>
    public var cpus: Located<Int>?
    public var memory: Located<Int64>?
    public var diskSize: Located<Int64>?
    public var mac: Located<MACAddress>?
    public var bridge: Located<String>?
    public var vlan: Located<Int>?
    /// A fixed VM id (Proxmox) or domain name (libvirt); otherwise allocated.
    public var id: Located<String>?
    public var storage: Located<String>?
    /// The NIC's kernel link name (`enp3s0f0`), for what Talos configures by link name alone:
    /// Wake-on-LAN on bare metal (`EthernetConfig` resolves no aliases).
    public var link: Located<String>? = nil
}

public struct GPUPoolSpec: Sendable {
    public enum Market: String, Sendable, CaseIterable {
        case spot
        case onDemand = "on-demand"
    }
    public var name: Located<String>
    public var provider: Located<String>
    public var image: Located<String>
    public var instanceType: Located<String>
    public var ami: Located<String>?
    public var market: Located<Market>
    public var count: Int
    public var maxLifetime: Located<Duration>
    public var idleTimeout: Located<Duration>?
    public var defaultTTL: Located<Duration>
    public var subnet: Located<String>?
    public var securityGroups: [Located<String>]
    public var owner: Located<String>?
    public var scheduleUp: Located<String>?
    public var scheduleDown: Located<String>?
    public var location: SourceLocation
    /// The root EBS volume, gp3 (`rootVolume`, default 100 GiB): official Talos AMIs register 20 GiB
    /// of gp2, and EPHEMERAL (containerd's images, pods' scratch) lives on it; CUDA images fill that.
    public var rootVolume: Located<Int64>? = nil

    public static let defaultRootVolume: Int64 = 100 << 30
    /// The AMI's own root (Talos' uploader registers 20 GiB) and gp3's largest volume.
    public static let rootVolumeRange: ClosedRange<Int64> = (20 << 30)...(16 << 40)
}

public struct LabSpec: Sendable {
    public struct Fault: Sendable {
        public var node: Located<String>
        public var kind: Located<String>
    }
    public var timeScale: Located<Double>
    public var faults: [Fault]
    /// Where the simulated world is kept (twin, hypervisor, record), relative to the inventory;
    /// nil: the state directory's `lab/`. Several state directories (hosts) naming one directory
    /// share one lab, as two hosts share one hypervisor and one cluster.
    public var directory: Located<String>?
    /// What the simulated providers take, at time scale 1 (`lab.delays`).
    public var delays = LabDelays()
    /// The lab's home router (`lab.dhcp`): its DHCP pool and the reservations it has.
    public var dhcp = LabDHCP()
    /// Hardware classes (`images:` names) whose machines power on from a magic packet when off
    /// (`lab.wakeFromPowerOff`); none by default: a Mac mini under Linux is not known to (issue W1).
    public var wakeFromPowerOff: [Located<String>] = []

    /// A time-scale-1 duration on the lab's clock.
    public func scaled(_ duration: Duration) -> Duration { duration * timeScale.value }
}

/// The lab's DHCP server, as on a home router: a machine without a config (Talos in maintenance)
/// gets its reserved address, else one from the pool; its static address comes only with its config.
public struct LabDHCP: Sendable {
    /// A reservation: the named node's machine (its NIC's MAC, whatever the inventory says) gets `address`.
    public struct Reservation: Sendable {
        public var node: Located<String>
        public var address: Located<IPv4Address>
    }
    /// The pool's first and last address; nil: `.100` to `.199` of `nodeCIDR` (clipped to it).
    public var pool: (first: Located<IPv4Address>, last: Located<IPv4Address>)?
    /// nil: every node's machine is reserved at its inventory address (the README's advice followed);
    /// a list: exactly those (`[]`: none, every machine takes a pool address).
    public var reservations: [Reservation]?

    public init() {}
}

/// How long the lab's providers take at time scale 1, close to what real ones do, so a lab run at
/// scale 1 is an honest rehearsal: a libvirt define with its volume and a start each about 3 s, an
/// EC2 instance about 30 s from pending to running (then it boots), a Mac mini about 5 s from the
/// Wake-on-LAN packet to its firmware. `lab.delays` overrides them (e.g. `libvirtCreate: 10s`).
public struct LabDelays: Sendable, Equatable {
    public var libvirtCreate: Duration = .seconds(3)
    public var libvirtStart: Duration = .seconds(3)
    public var ec2Boot: Duration = .seconds(30)
    public var wakeOnLAN: Duration = .seconds(5)
    /// Image Factory building a schematic's installer on its first request (minutes, for real).
    public var installerBuild: Duration = .seconds(90)

    public init() {}

    /// The `lab.delays` keys and the field each sets.
    static var fields: [(key: String, field: WritableKeyPath<LabDelays, Duration>)] {
        [("libvirtCreate", \.libvirtCreate), ("libvirtStart", \.libvirtStart), ("ec2Boot", \.ec2Boot), ("wakeOnLAN", \.wakeOnLAN),
         ("installerBuild", \.installerBuild)]
    }
}

extension Inventory {
    /// The folder the lab's world lives in for runs with `stateDirectory`.
    public func labDirectory(stateDirectory: String) -> String {
        guard let directory = lab?.directory?.value else { return stateDirectory + "/lab" }
        return PathText.resolve(directory, relativeTo: self.directory)
    }
}

extension NodeSpec {
    /// A node the inventory does not list but the cluster still has (an orphan), described from
    /// what etcd, Kubernetes or a provider says of it, so `provision remove` can retire it with the
    /// same steps as a listed node. Its fields point at the command line, not at a file.
    public static func orphan(name: String, controlPlane: Bool, address: IPv4Address?, provider: String?, image: String) -> NodeSpec {
        let here = SourceLocation(file: "command line", line: 1, column: 1)
        return NodeSpec(name: Located(name, at: here), role: Located(controlPlane ? .controlplane : .worker, at: here), image: Located(image, at: here),
                        address: Located(address ?? IPv4Address(raw: 0), at: here), hostname: name, talosVersion: nil,
                        machine: MachineSpec(provider: Located(provider ?? "", at: here), cpus: nil, memory: nil, diskSize: nil, mac: nil, bridge: nil,
                                             vlan: nil, id: nil, storage: nil),
                        installDisk: nil, diskSelector: nil, wipe: false, allowRemovableDisk: false, kubespan: false, labels: [:], patches: [], location: here)
    }
}

extension Inventory {
    /// The inventory with one more node (an orphan being removed).
    public func adding(_ node: NodeSpec) -> Inventory {
        var copy = self
        copy.nodes.append(node)
        return copy
    }
}
