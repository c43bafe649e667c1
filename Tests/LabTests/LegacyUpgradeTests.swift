import Foundation
import Testing
import TestSupport
@testable import Lab
@testable import ProvisionCore
@testable import Steps
@testable import TalosKit

/// Talos 1.12's MachineService/Upgrade pulls and checks the installer before it answers, and Image
/// Factory builds a schematic's installer on its first request: minutes. provision has the factory
/// build it first (ImagePull, while the node still serves), shows that the pull is alive, and gives
/// the Upgrade call a deadline that fits, so the upgrade goes through in one attempt.
@Suite struct LegacyUpgradeTests {
    @Test(.timeLimit(.minutes(4))) func aSlowInstallerPullUpgradesInOneAttemptWithProgress() async throws {
        var delays = LabDelays()
        delays.installerBuild = .seconds(120)   // two minutes on the lab's clock (6 s at 0.05)
        var lab = try TalosLab(nodes: ["cp1", "mini01"], timeScale: 0.05, delays: delays)
        await lab.cluster.powerOnAll()
        let configured = try await lab.run(TalosLab.upToConfigured)
        #expect(configured.succeeded, "\(configured.errors)")
        #expect(try await lab.admin("mini01").version().version.tag == "v1.12.6")

        let index = try #require(lab.inventory.nodes.firstIndex { $0.name.value == "mini01" })
        lab.inventory.nodes[index].talosVersion?.value = "v1.12.11"
        let upgrade = """
            apiVersion: provision/v1
            kind: Playbook
            name: upgrade
            steps:
              - {id: upgrade, uses: talos.upgrade, forEach: "name=mini01", timeout: 600s}
            """
        let start = LabRecord.now()
        let sink = CollectingSink()
        let run = try await lab.run(upgrade, sinks: [sink])
        #expect(run.succeeded, "\(run.errors)")
        #expect(try await lab.admin("mini01").version().version.tag == "v1.12.11")

        let entries = lab.cluster.record.entries.filter { $0.t >= start && $0.node == "mini01" }
        let upgrades = entries.filter { $0.event == "call" && $0.method == "MachineService/Upgrade" }
        #expect(upgrades.count == 1, "one attempt: \(entries.map { "\($0.event) \($0.method ?? "")" })")
        let pull = try #require(entries.firstIndex { $0.event == "call" && $0.method == "MachineService/ImagePull" })
        let build = try #require(entries.firstIndex { $0.event == "factory-build" })
        let sent = try #require(entries.firstIndex { $0.event == "call" && $0.method == "MachineService/Upgrade" })
        #expect(pull < build && build < sent, "the factory built the installer for the ImagePull, before the node was taken down")
        let progress = sink.all.compactMap(\.message).filter { $0.contains("pulling") && $0.contains("so far") }
        #expect(!progress.isEmpty, "the pull's progress is shown: \(sink.all.compactMap(\.message))")
    }
}
