import Foundation
import Lab
import Providers
import Testing
import TestSupport
@testable import ProvisionCore
@testable import Steps

/// The lab's firmware boots a libvirt VM only from a medium holding Talos for the node's schematic,
/// as OVMF boots only what its boot devices reach: the provider as it was (a blank disk, nothing
/// else) leaves the VM in its firmware and its node never answers; with its boot media it boots.
@Suite(.serialized) struct LabFirmwareTests {
    // The limit covers waiting for the demo lab lock, which other demo tests hold for minutes.
    @Test(.timeLimit(.minutes(10))) func aVMBootsOnlyFromATalosMediumMadeForIt() async throws {
        try await DemoLabLock.exclusive {
            let state = temporaryDirectory()
            let (inventory, _) = try InventoryParser.load(path: "\(repositoryRoot)/inventories/demo.yaml")
            let credentials = CredentialResolver(environment: [:], baseDirectory: inventory.directory, redactor: Redactor())
            let lab = try await LabServices.start(inventory, credentials: credentials, twin: "\(state)/lab/twin.json")
            let spec = try #require(inventory.provider(named: "lab-libvirt"))
            let persisted = TestDriverState(path: "\(state)/lab/libvirt-lab-libvirt.xml")
            do {
                // The provider without boot media, as it was before: one blank disk.
                let blank = try LibvirtMachineProvider(provider: spec, persisted: persisted)
                try await blank.prepareHost(inventory.nodes, in: inventory)
                _ = try await blank.ensureRunning(try #require(inventory.node(named: "cp1")), in: inventory)
                let withMedia = try LibvirtMachineProvider(provider: spec, persisted: persisted) { node in
                    try BootMediaResolver.libvirt(for: node, in: inventory, factory: spec.setting("imageFactory"))
                }
                _ = try await withMedia.ensureRunning(try #require(inventory.node(named: "cp2")), in: inventory)
                let cp2 = try #require(lab.cluster.node("cp2"))
                try await eventually(timeout: .seconds(30)) {
                    guard await cp2.powered else { throw PeerError("cp2 did not boot") }
                }
                let record = try LabRecordFile(stateDirectory: state)
                let stuck = record.entries.first { $0.node == "cp1" && $0.event == "firmware" }
                #expect(stuck?.detail?.contains("No bootable option or device was found") == true, "\(String(describing: stuck))")
                #expect(await lab.cluster.node("cp1")?.powered == false, "a VM with a blank disk never boots Talos")
                #expect(!record.entries.contains { $0.node == "cp2" && $0.event == "firmware" })
            } catch {
                await lab.stop()
                throw error
            }
            await lab.stop()
        }
    }
}
