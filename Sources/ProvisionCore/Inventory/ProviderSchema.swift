/// What each provider kind accepts, so unknown settings are caught and credentials are forced to be
/// references. Keeping this as data keeps the parser free of per-kind branches.
struct ProviderSchema {
    enum Format {
        case text, url, ipv4, port, duration, vmIDRange, fingerprint, libvirtURI, count, domainType, path, bool
    }

    struct Setting {
        var key: String
        var format: Format
        var required: Bool = false
        var defaultValue: String? = nil
    }

    var settings: [Setting]
    /// Keys whose values are secrets and must be written as `env:`, `file:` or `op://` references.
    var credentials: [String]
    var requiredCredentials: [[String]]

    static func forKind(_ kind: ProviderSpec.Kind) -> ProviderSchema {
        switch kind {
        case .proxmox:
            return ProviderSchema(settings: [
                Setting(key: "endpoint", format: .url, required: true),
                Setting(key: "node", format: .text, required: true),
                Setting(key: "tokenID", format: .text),
                Setting(key: "username", format: .text),
                Setting(key: "fingerprint", format: .fingerprint, required: true),
                Setting(key: "vmIDRange", format: .vmIDRange, required: true),
                Setting(key: "storage", format: .text, defaultValue: "local-lvm"),
                Setting(key: "isoStorage", format: .text, defaultValue: "local"),
                // Creates (with their import or clone) at once on this host; start and waits are never held back.
                Setting(key: "maxParallel", format: .count, defaultValue: "4"),
            ], credentials: ["tokenSecret", "password"], requiredCredentials: [["tokenSecret", "password"]])
        case .libvirt:
            return ProviderSchema(settings: [
                Setting(key: "uri", format: .libvirtURI, required: true),
                // VM disks go in this pool; a host without it (Unraid has no pools) gets a directory pool at domainsPath.
                Setting(key: "storagePool", format: .text, defaultValue: "default"),
                Setting(key: "domainsPath", format: .path, defaultValue: "/mnt/user/domains"),
                // Talos ISOs go in this pool, defined at isosPath when missing (Unraid's isos share).
                Setting(key: "isoPool", format: .text, defaultValue: "isos"),
                Setting(key: "isosPath", format: .path, defaultValue: "/mnt/user/isos"),
                // libvirt starts the VMs when the host does: how Unraid brings VMs back after a reboot or an array start.
                Setting(key: "autostart", format: .bool, defaultValue: "true"),
                Setting(key: "maxParallel", format: .count, defaultValue: "2"),
                // Where the Talos ISO and disk images are downloaded from before they are uploaded to the pool.
                Setting(key: "imageFactory", format: .url, defaultValue: "https://factory.talos.dev"),
                // A Talos ISO already on the host (Unraid's isos share): used as is instead of one uploaded to the pool.
                Setting(key: "isoPath", format: .text),
                // `qemu` runs the VMs under TCG, where a host without KVM (a nested CI) has none.
                Setting(key: "domainType", format: .domainType, defaultValue: "kvm"),
                // Explicit UEFI firmware; without them Unraid's OVMF is used where libvirt offers it, else libvirt picks.
                Setting(key: "loader", format: .text),
                Setting(key: "nvramTemplate", format: .text),
            ], credentials: [], requiredCredentials: [])
        case .metal:
            return ProviderSchema(settings: [
                Setting(key: "broadcast", format: .ipv4, required: true),
                Setting(key: "port", format: .port, defaultValue: "9"),
                Setting(key: "bootTimeout", format: .duration, defaultValue: "10m"),
            ], credentials: [], requiredCredentials: [])
        case .aws:
            return ProviderSchema(settings: [
                Setting(key: "region", format: .text, required: true),
                Setting(key: "endpoint", format: .url),
            ], credentials: ["accessKeyID", "secretAccessKey", "sessionToken"],
               requiredCredentials: [["accessKeyID"], ["secretAccessKey"]])
        }
    }

    static func check(_ format: Format, _ value: String) -> String? {
        switch format {
        case .text:
            return value.isEmpty ? "a non-empty value" : nil
        case .path:
            return value.hasPrefix("/") && value.count > 1 ? nil : "an absolute path on the host such as /mnt/user/domains"
        case .bool:
            return value == "true" || value == "false" ? nil : "true or false"
        case .url:
            return (value.hasPrefix("https://") || value.hasPrefix("http://")) && value.count > 8 ? nil : "a URL such as https://host:8006"
        case .ipv4:
            return IPv4Address(value) == nil ? "an IPv4 address such as 192.168.1.255" : nil
        case .port:
            return Int(value).map { (1...65535).contains($0) } == true ? nil : "a port number between 1 and 65535"
        case .duration:
            return DurationText.parse(value) == nil ? "a duration such as 10m" : nil
        case .vmIDRange:
            return vmIDRange(value) == nil ? "a range of VM ids such as 9000-9099 (each at least 100)" : nil
        case .fingerprint:
            let parts = value.split(separator: ":")
            let ok = parts.count == 32 && parts.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
            return ok ? nil : "a SHA-256 certificate fingerprint as 32 colon-separated hex pairs (AA:BB:…)"
        case .count:
            return Int(value).map { (1...64).contains($0) } == true ? nil : "a whole number from 1 to 64"
        case .domainType:
            return ["kvm", "qemu"].contains(value) ? nil : "kvm (hardware virtualization) or qemu (emulation, where the host has no KVM)"
        case .libvirtURI:
            let ok = ["qemu+ssh://", "qemu:///", "qemu+tcp://", "qemu+tls://", "test:///"].contains { value.hasPrefix($0) }
            return ok ? nil : "a libvirt URI such as qemu+ssh://root@unraid/system or test:///default"
        }
    }

    static func vmIDRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), low >= 100, low <= high,
              high <= 999_999_999 else { return nil }
        return low...high
    }
}
