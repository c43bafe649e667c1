import ProvisionCore

/// Reads a schematic file strictly, as the factory does (unknown fields are errors), with positions.
public enum SchematicParser {
    public static func load(path: String) throws(InputError) -> Schematic {
        try parse(YAMLLoader().load(path: path))
    }

    public static func parse(text: String, file: String) throws(InputError) -> Schematic {
        try parse(YAMLLoader().load(text: text, file: file))
    }

    static func parse(_ root: YAMLNode) throws(InputError) -> Schematic {
        let collector = DiagnosticCollector()
        var schematic = Schematic()
        if let top = MappingReader(root, path: "", collector: collector) {
            schematic.owner = top.string("owner")?.value ?? ""
            if let overlay = top.mapping("overlay") {
                schematic.overlay.image = overlay.string("image")?.value ?? ""
                schematic.overlay.name = overlay.string("name")?.value ?? ""
                schematic.overlay.options = overlay.node("options").map(ConfigValue.init)
                overlay.finish()
            }
            if let custom = top.mapping("customization") {
                schematic.embeddedMachineConfiguration = custom.string("embeddedMachineConfiguration")?.value ?? ""
                schematic.extraKernelArgs = (custom.stringList("extraKernelArgs") ?? []).map(\.value)
                for (index, item) in (custom.list("meta") ?? []).enumerated() {
                    guard let entry = MappingReader(item, path: "customization.meta[\(index)]", collector: collector) else { continue }
                    let key = entry.int("key", required: true, range: 0...255, hint: "META keys are 0-255 (0x0a is written 10)")
                    let value = entry.string("value")?.value ?? ""
                    entry.finish()
                    if let key { schematic.meta.append(.init(key: key.value, value: value)) }
                }
                if let ext = custom.mapping("systemExtensions") {
                    schematic.officialExtensions = (ext.stringList("officialExtensions") ?? []).map(\.value)
                    ext.finish()
                }
                schematic.bootloader = custom.choice("bootloader", ["auto", "dual-boot", "grub", "sd-boot"])?.value ?? ""
                if let secure = custom.mapping("secureboot") {
                    schematic.enrollKeys = secure.choice("enrollKeys", ["off", "manual", "if-safe", "force"])?.value ?? ""
                    schematic.includeWellKnownCertificates = secure.bool("includeWellKnownCertificates")?.value ?? false
                    secure.finish()
                }
                if let disk = custom.mapping("diskImage") {
                    schematic.sectorSize = disk.int("sectorSize", range: 0...65536)?.value ?? 0
                    disk.finish()
                }
                custom.finish()
            }
            top.finish()
        }
        if collector.hasErrors { throw InputError(collector.sorted) }
        return schematic
    }
}

/// Where a node's boot assets and installer come from, for a schematic and a Talos version.
public struct ImageURLs: Sendable, Equatable {
    public var schematicID: String
    public var version: String
    public var platform: String
    /// Where boot media are downloaded from: Image Factory, or a self-hosted one (the lab's stand-in).
    public var downloadBase: String

    public init(schematicID: String, version: String, platform: String, downloadBase: String? = nil) {
        self.schematicID = schematicID
        self.version = version
        self.platform = platform
        self.downloadBase = downloadBase.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "https://\(Self.factory)"
    }

    static let factory = "factory.talos.dev"

    var images: String { "\(downloadBase)/image/\(schematicID)/\(version)" }
    public var iso: String { "\(images)/metal-amd64.iso" }
    /// The disk image a VM or cloud imports: nocloud for Proxmox disk imports, aws for AMI imports.
    public var diskImage: String { "\(images)/\(platform)-amd64.raw.xz" }
    /// The uncompressed qcow2 the factory serves, for hypervisors that import disks (Proxmox `import`).
    public var importableDisk: String { "\(images)/\(platform)-amd64.qcow2" }
    /// The raw disk image gzip'd, which zlib decompresses as it streams (image-factory v1.5.0
    /// `internal/profile/profile.go` takes `.raw.gz`): what a libvirt VM's disk is made from.
    public var gzippedDisk: String { "\(images)/\(platform)-amd64.raw.gz" }
    public var installer: String { "\(Self.factory)/\(platform)-installer/\(schematicID):\(version)" }
    public var pxe: String { "https://pxe.\(Self.factory)/pxe/\(schematicID)/\(version)/metal-amd64" }
}
