import Foundation
import TalosKit

/// What a simulated Talos node is: where it listens, what hardware it reports, how fast time runs
/// and which faults it has been told to show.
public struct SimulatedNodeSpec: Sendable {
    public var name: String
    /// Its inventory address (127.0.0.11, ...): the network rule keeps the lab on 127/8. What it
    /// answers at once a config gives it that address; its name for the lab's record.
    public var address: String
    /// What the lab's DHCP server gives its NIC (a reservation or a pool address): where it answers
    /// while it has no config, as Talos in maintenance runs DHCP on every link. Nil: `address`
    /// (machines that are not on the lab's LAN, and unit tests' nodes).
    public var leaseAddress: String?
    public var port: Int = 50000
    public var talosVersion: String = "v1.13.0"
    /// `metal` boots from ISO and installs to disk (apply -> install -> reboot); cloud images
    /// (`nocloud`, `aws`) are already installed and go straight to running.
    public var platform: String = "metal"
    public var disks: [SimulatedDisk] = SimulatedDisk.defaults
    public var faults: Set<SimulatedFault> = []
    /// Multiplies every simulated delay; 0 makes the node instant.
    public var timeScale: Double = 1
    /// The lab libvirt provider whose domain (named like the node) powers it; nil when not a VM.
    public var hypervisor: String?
    /// The libvirt domain's name, when it is not the node's (`machine.id`).
    public var domain: String?
    /// The Image Factory schematic the machine was installed with.
    public var schematic: String?
    /// The MAC the inventory gives it (`machine.mac`).
    public var mac: String?
    /// Its hardware powers on from a magic packet when off (`lab.wakeFromPowerOff`), if its NIC was
    /// armed; off by default: a Mac mini under Linux is not known to (wire audit 2, W1).
    public var wakesFromPowerOff = false
    /// How long Image Factory takes to build a schematic's installer on its first request, in lab
    /// seconds (`lab.delays.installerBuild`).
    public var installerBuildSeconds = 90.0

    public init(name: String, address: String, port: Int = 50000) {
        self.name = name
        self.address = address
        self.port = port
    }

    /// The NIC's permanent MAC as the machine has it: the inventory's, unless the `mac-typo` fault
    /// says the inventory got it wrong; one made from the address when the inventory names none.
    var nicMAC: String {
        let parts = address.split(separator: ".").compactMap { UInt8($0) }
        var mac = mac?.lowercased() ?? String(format: "52:54:00:%02x:%02x:%02x", parts.count > 1 ? parts[1] : 0, parts.count > 2 ? parts[2] : 0, parts.last ?? 0)
        if faults.contains(.macTypo), let last = UInt8(mac.suffix(2), radix: 16) {
            mac = String(mac.dropLast(2)) + String(format: "%02x", last ^ 0x01)
        }
        return mac
    }

    /// The disks as found, faults included: `disk-holds-macos` puts macOS on the first internal one.
    func withDiskFaults() -> SimulatedNodeSpec {
        var spec = self
        if faults.contains(.diskHoldsMacOS), let index = spec.disks.firstIndex(where: { $0.transport != "usb" }) {
            spec.disks[index].table = "gpt"
            spec.disks[index].partitions = SimulatedPartition.macOS
        }
        return spec
    }

    var installsToDisk: Bool { platform == "metal" }
}

public struct SimulatedDisk: Sendable {
    public var path: String
    public var size: UInt64
    public var model: String
    public var transport: String
    public var rotational = false
    /// What blkid finds on it before Talos: a partition table (`gpt`) and its partitions.
    public var table = ""
    public var partitions: [SimulatedPartition] = []

    public init(path: String, size: UInt64, model: String, transport: String) {
        self.path = path
        self.size = size
        self.model = model
        self.transport = transport
    }

    public static let defaults = [
        SimulatedDisk(path: "/dev/vda", size: 64 << 30, model: "QEMU HARDDISK", transport: "virtio"),
        SimulatedDisk(path: "/dev/sdb", size: 16 << 30, model: "USB DISK 3.0", transport: "usb"),
    ]
}

/// A partition as blkid reports it: its label and the filesystem on it.
public struct SimulatedPartition: Sendable {
    public var label: String
    public var filesystem: String

    public init(label: String, filesystem: String) {
        self.label = label
        self.filesystem = filesystem
    }

    /// What Talos' installer lays out (EFI, BIOS, BOOT, META, STATE, EPHEMERAL).
    static let talos = [("EFI", "vfat"), ("BIOS", ""), ("BOOT", "xfs"), ("META", "talosmeta"), ("STATE", "xfs"), ("EPHEMERAL", "xfs")]
        .map { SimulatedPartition(label: $0.0, filesystem: $0.1) }
    /// A Mac's internal disk: the EFI system partition and an APFS container.
    static let macOS = [SimulatedPartition(label: "EFI", filesystem: "vfat"), SimulatedPartition(label: "", filesystem: "apfs")]
}

/// Misbehaviour a test or a lab inventory can ask a node for.
public enum SimulatedFault: String, Sendable, CaseIterable {
    /// The API never comes up: connections are refused forever.
    case neverBoots = "never-boots"
    /// Installation takes a hundred times as long (a dying disk, a slow USB stick).
    case slowInstall = "slow-install"
    /// Every other new connection is dropped before TLS completes.
    case apiFlaps = "api-flaps"
    /// ApplyConfiguration fails with InvalidArgument.
    case refusesApply = "refuses-apply"
    /// This node's etcd member reports errors and does not count as healthy.
    case etcdUnhealthy = "etcd-unhealthy"
    /// This node's etcd member raises a NOSPACE alarm once it runs (until disarmed).
    case etcdAlarm = "etcd-alarm"
    /// ImageService/Pull (and the legacy upgrade's pull) fails: the registry does not answer.
    case pullFails = "pull-fails"
    /// An upgraded slot never boots: Talos falls back to the old version.
    case upgradeFailsBoot = "upgrade-fails-boot"
    /// The first internal disk still holds macOS (GPT, an EFI and an APFS partition), as a Mac mini
    /// bought second-hand does: Talos' installer refuses it unless the config says to wipe.
    case diskHoldsMacOS = "disk-holds-macos"
    /// The NIC's MAC is not the inventory's (a typo there): its last byte differs.
    case macTypo = "mac-typo"
}

/// How long things take on a real node, in seconds, before scaling.
enum SimulatedTiming {
    static let boot = 8.0
    static let install = 20.0
    static let reboot = 4.0
    /// From `rebooting` to apid going down (services stopping).
    static let servicesStop = 0.5
    static let etcdJoin = 3.0
    static let resetWipe = 3.0
    static let pull = 10.0
    static let upgradeInstall = 20.0
}
