import Foundation
import Testing
@testable import ProvisionCore
@testable import TalosKit

/// The schematic-ID vectors of ../shared/reference/talos-api.md §10.2, from user-written YAML.
@Suite struct SchematicTests {
    static let vectors: [(String, String)] = [
        ("customization: {}\n", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
        ("customization:\n  extraKernelArgs: [noapic, nolapic]\n", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"),
        ("customization:\n  meta:\n    - key: 10\n      value: foo\n", "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"),
        ("customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n", "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"),
        ("customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/gvisor]\n", "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5"),
        ("customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/gvisor, siderolabs/intel-ucode]\n  extraKernelArgs: [net.ifnames=0]\n", "b8e8fbbe1b520989e6c52c8dc8303070cb42095997e76e812fa8892393e1d176"),
        ("customization:\n  secureboot:\n    includeWellKnownCertificates: true\n", "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"),
        ("customization:\n  diskImage:\n    sectorSize: 4096\n", "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea"),
        ("overlay:\n  name: rpi_generic\n  image: siderolabs/sbc-raspberrypi\n", "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"),
        ("customization:\n  extraKernelArgs: [vga=791]\n", "eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073"),
    ]

    @Test(arguments: vectors)
    func schematicIDMatchesTheFactory(_ yaml: String, _ id: String) throws {
        #expect(try SchematicParser.parse(text: yaml, file: "s.yaml").id == id)
    }

    @Test func canonicalBodyIsGoYAMLShaped() throws {
        let schematic = try SchematicParser.parse(text: "customization:\n  meta: [{key: 10, value: foo}]\n", file: "s.yaml")
        #expect(schematic.canonicalYAML == "customization:\n    meta:\n        - key: 10\n          value: foo\n")
    }

    @Test func unknownFieldsAreRejectedWithPosition() throws {
        let error = #expect(throws: InputError.self) {
            try SchematicParser.parse(text: "customization:\n  systemExtension:\n    officialExtensions: [x]\n", file: "s.yaml")
        }
        #expect(error?.diagnostics.first?.key == "unknown-key")
        #expect(error?.diagnostics.first?.location.line == 2)
        #expect(error?.diagnostics.first?.message.contains("did you mean `systemExtensions`") == true)
    }

    @Test func valuesThatWouldChangeTypeAreQuoted() {
        #expect(CanonicalYAMLWriter.quote("true") == "'true'")
        #expect(CanonicalYAMLWriter.quote("{}") == "'{}'")
        #expect(CanonicalYAMLWriter.quote("1") == "'1'")
        #expect(CanonicalYAMLWriter.quote("console=ttyS0,115200") == "console=ttyS0,115200")
        #expect(CanonicalYAMLWriter.quote("it's: x") == "'it''s: x'")
    }

    @Test func urlsFollowTheFactoryLayout() {
        let urls = ImageURLs(schematicID: "abc", version: "v1.13.2", platform: "nocloud")
        #expect(urls.iso == "https://factory.talos.dev/image/abc/v1.13.2/metal-amd64.iso")
        #expect(urls.diskImage == "https://factory.talos.dev/image/abc/v1.13.2/nocloud-amd64.raw.xz")
        #expect(urls.installer == "factory.talos.dev/nocloud-installer/abc:v1.13.2")
    }
}

/// Overlay options keep their YAML types: go-yaml writes numbers and booleans plain.
@Suite struct SchematicOverlayOptionTests {
    @Test func typedOptionsAreNotQuoted() throws {
        let schematic = try SchematicParser.parse(text: """
            overlay:
              image: siderolabs/sbc-raspberrypi
              name: rpi_generic
              options: {speed: 3, enabled: true, label: "007", configTxt: [{dtparam: spi}]}
            """, file: "s.yaml")
        #expect(schematic.canonicalYAML == """
            overlay:
                image: siderolabs/sbc-raspberrypi
                name: rpi_generic
                options:
                    configTxt:
                        -
                            dtparam: spi
                    enabled: true
                    label: '007'
                    speed: 3
            customization: {}

            """)
    }
}
