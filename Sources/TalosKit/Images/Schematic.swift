import Crypto
import ProvisionCore

/// An Image Factory schematic: which extensions, kernel args and META values a Talos image carries.
/// Its ID is computed offline exactly as the factory does, so plans show real image URLs without a
/// network call.
public struct Schematic: Sendable, Equatable {
    public struct Overlay: Sendable, Equatable {
        public var image = ""
        public var name = ""
        public var options: ConfigValue?
    }

    public struct Meta: Sendable, Equatable {
        public var key: Int
        public var value: String
    }

    public var owner = ""
    public var overlay = Overlay()
    public var embeddedMachineConfiguration = ""
    public var extraKernelArgs: [String] = []
    public var meta: [Meta] = []
    public var officialExtensions: [String] = []
    public var bootloader = ""
    public var enrollKeys = ""
    public var includeWellKnownCertificates = false
    public var sectorSize = 0

    public init() {}

    /// The factory's canonical body: go-yaml v4 output of its Go struct (field order, omitempty,
    /// 4-space indentation, list items indented under their key, `customization: {}` when empty).
    public var canonicalYAML: String {
        var out = CanonicalYAMLWriter()
        if !owner.isEmpty { out.scalar("owner", owner, indent: 0) }
        if !overlay.image.isEmpty || !overlay.name.isEmpty || overlay.options != nil {
            out.line("overlay:", indent: 0)
            if !overlay.image.isEmpty { out.scalar("image", overlay.image, indent: 1) }
            if !overlay.name.isEmpty { out.scalar("name", overlay.name, indent: 1) }
            if let options = overlay.options { out.value("options", options, indent: 1) }
        }
        var custom = CanonicalYAMLWriter()
        if !embeddedMachineConfiguration.isEmpty { custom.scalar("embeddedMachineConfiguration", embeddedMachineConfiguration, indent: 1) }
        if !extraKernelArgs.isEmpty { custom.list("extraKernelArgs", extraKernelArgs, indent: 1) }
        if !meta.isEmpty {
            custom.line("meta:", indent: 1)
            for entry in meta {
                custom.line("- key: \(entry.key)", indent: 2)
                custom.scalar("value", entry.value, indent: 2, extra: 2)
            }
        }
        if !officialExtensions.isEmpty {
            custom.line("systemExtensions:", indent: 1)
            custom.list("officialExtensions", officialExtensions, indent: 2)
        }
        if !bootloader.isEmpty { custom.scalar("bootloader", bootloader, indent: 1) }
        if !enrollKeys.isEmpty || includeWellKnownCertificates {
            custom.line("secureboot:", indent: 1)
            if !enrollKeys.isEmpty { custom.scalar("enrollKeys", enrollKeys, indent: 2) }
            if includeWellKnownCertificates { custom.line("includeWellKnownCertificates: true", indent: 2) }
        }
        if sectorSize != 0 {
            custom.line("diskImage:", indent: 1)
            custom.line("sectorSize: \(sectorSize)", indent: 2)
        }
        if custom.text.isEmpty {
            out.line("customization: {}", indent: 0)
        } else {
            out.line("customization:", indent: 0)
            out.text += custom.text
        }
        return out.text
    }

    /// Lower-case hex SHA-256 of the canonical body.
    public var id: String {
        SHA256.hash(data: Array(canonicalYAML.utf8)).hexString
    }
}
