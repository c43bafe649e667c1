import Foundation
import Testing
import TestSupport
@testable import ProvisionCore

/// Every bad inventory under Tests/Fixtures/bad-inventories is refused with the diagnostics its
/// `# expect:` lines name, at the exact line and column.
@Suite struct InventoryCorpusTests {
    static let files = Fixtures.files(in: "bad-inventories")

    @Test func corpusIsLargeEnough() {
        #expect(Self.files.count >= 25)
    }

    @Test(arguments: files)
    func badInventoryIsRefusedAtTheRightPlace(_ file: String) throws {
        let name = URL(fileURLWithPath: file).lastPathComponent
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: file) }
        let diagnostics = error?.diagnostics ?? []
        let expected = name == "binary.yaml" ? [(line: Optional(1), column: Optional(1), key: "input.binary")] : Fixtures.expectations(of: file)
        #expect(!expected.isEmpty, "\(name) has no `# expect:` line")
        for expectation in expected {
            let found = diagnostics.contains { d in
                d.key == expectation.key && d.severity == .error
                    && (expectation.line == nil || (d.location.line == expectation.line && d.location.column == expectation.column))
            }
            #expect(found, "\(name): expected \(expectation.key) at \(expectation.line ?? 0):\(expectation.column ?? 0); got:\n\(diagnostics.map(\.description).joined(separator: "\n"))")
        }
        for diagnostic in diagnostics {
            #expect(diagnostic.location.file == file)
            #expect(diagnostic.fix?.isEmpty == false, "\(name): \(diagnostic.key) has no fix")
        }
    }

    /// libyaml gives up past the comment and blank line after an unclosed `[`; the message also
    /// names where the list began, as PyYAML and yamllint do.
    @Test func aSyntaxErrorNamesWhereTheConstructBegan() throws {
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: Fixtures.path("bad-inventories/yaml-unclosed-flow-list.yaml")) }
        let message = error?.diagnostics.first?.description ?? ""
        #expect(message.contains("while parsing a flow sequence at 49:13") && message.contains("at 53:3"), "\(message)")
    }

    @Test func unknownKeysSuggestTheClosestKnownKey() throws {
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: Fixtures.path("bad-inventories/unknown-node-key.yaml")) }
        let unknown = try #require(error?.diagnostics.first { $0.key == "unknown-key" })
        #expect(unknown.message.contains("did you mean `address`"))
    }

    @Test func allErrorsAreReportedAtOnce() throws {
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: Fixtures.path("bad-inventories/many-errors-at-once.yaml")) }
        #expect((error?.diagnostics.filter { $0.severity == .error }.count ?? 0) >= 3)
    }

    @Test func hugeFileIsRefusedBeforeParsing() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/huge.yaml"
        let line = "# " + String(repeating: "x", count: 1022) + "\n"
        try String(repeating: line, count: 5 * 1024).write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: path) }
        #expect(error?.diagnostics.first?.key == "input.too-large")
    }

    @Test func invalidUTF8IsRefused() throws {
        let error = #expect(throws: InputError.self) {
            try YAMLLoader().load(data: Data([0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a]), file: "x.yaml")
        }
        #expect(error?.diagnostics.first?.key == "input.binary")
    }

    @Test func missingFileIsAClearError() throws {
        let error = #expect(throws: InputError.self) { try InventoryParser.load(path: "/nonexistent/inventory.yaml") }
        #expect(error?.diagnostics.first?.key == "input.not-found")
    }
}

/// The shipped inventories are valid, with only the warnings they are meant to carry.
@Suite struct ShippedInventoryTests {
    @Test(arguments: ["homelab", "demo"])
    func shippedInventoryIsValid(_ name: String) throws {
        let (inventory, warnings) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/\(name).yaml")
        #expect(inventory.controlPlanes.count == 3)
        #expect(inventory.nodes.count == 6)
        #expect(inventory.gpuPools.count == 1)
        #expect(warnings.allSatisfy { $0.severity == .warning })
        if name == "demo" {
            #expect(inventory.nodes.allSatisfy { $0.address.value.isLoopback }, "the lab must only use loopback addresses")
        }
    }

    @Test func homelabIsShapedLikeTheRealThing() throws {
        let (inventory, warnings) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/homelab.yaml")
        #expect(warnings.isEmpty)
        let kinds = inventory.nodes.map { inventory.provider(named: $0.machine.provider.value)!.kind.value }
        #expect(kinds.filter { $0 == .proxmox }.count == 3)
        #expect(kinds.filter { $0 == .metal }.count == 2)
        #expect(kinds.filter { $0 == .libvirt }.count == 1)
        let minis = inventory.nodes.filter { inventory.provider(named: $0.machine.provider.value)!.kind.value == .metal }
        #expect(minis.allSatisfy { $0.talosVersion?.value.hasPrefix("v1.12.") == true && $0.role.value == .worker })
        #expect(inventory.provider(named: inventory.gpuPools[0].provider.value)?.kind.value == .aws)
    }

    @Test func evenControlPlaneCountIsAWarningNotAnError() throws {
        let dir = Fixtures.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("images/vm.yaml"), toPath: dir + "/images/vm.yaml")
        try FileManager.default.createDirectory(atPath: dir + "/inventories", withIntermediateDirectories: true)
        let text = try String(contentsOfFile: Fixtures.path("inventories/base.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "  - name: w1\n    role: worker", with: "  - name: w1\n    role: controlplane")
        try text.write(toFile: dir + "/inventories/even.yaml", atomically: true, encoding: .utf8)
        let (_, warnings) = try InventoryParser.load(path: dir + "/inventories/even.yaml")
        #expect(warnings.map(\.key).sorted() == ["cluster.even-controlplanes", "secrets.plaintext"])
    }
}
