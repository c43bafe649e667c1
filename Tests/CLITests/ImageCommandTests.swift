import Foundation
import Testing

/// `provision image id` reproduces every schematic-ID vector of the reference, through the CLI.
@Suite struct ImageCommandTests {
    static let vectors: [(String, String)] = [
        ("customization: {}\n", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"),
        ("customization:\n  extraKernelArgs:\n    - noapic\n    - nolapic\n", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"),
        ("customization:\n  meta:\n    - key: 0x0a\n      value: foo\n", "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"),
        ("customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n", "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"),
        ("customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/gvisor\n", "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5"),
        ("customization:\n  extraKernelArgs:\n    - net.ifnames=0\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/gvisor\n      - siderolabs/intel-ucode\n", "b8e8fbbe1b520989e6c52c8dc8303070cb42095997e76e812fa8892393e1d176"),
        ("customization:\n  secureboot:\n    includeWellKnownCertificates: true\n", "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"),
        ("customization:\n  diskImage:\n    sectorSize: 4096\n", "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea"),
        ("overlay:\n  image: siderolabs/sbc-raspberrypi\n  name: rpi_generic\n", "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"),
    ]

    @Test(arguments: vectors)
    func imageIDPrintsOnlyTheID(_ yaml: String, _ id: String) async throws {
        let path = FileManager.default.temporaryDirectory.path + "/schematic-\(UUID()).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await CLI.run(["image", "id", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == id)
    }

    @Test func imageShowsEveryNodeAtItsPinnedVersion() async throws {
        let result = try await CLI.run(["image", "homelab", "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let rows = object?["nodes"] as? [[String: String]] ?? []
        #expect(rows.count == 7)
        let mini = rows.first { $0["name"] == "mini01" }
        #expect(mini?["version"] == "v1.12.6")
        #expect(mini?["installer"]?.hasPrefix("factory.talos.dev/metal-installer/") == true)
        #expect(rows.first { $0["name"] == "gpu" }?["diskImage"]?.hasSuffix("/aws-amd64.raw.xz") == true)
    }
}
