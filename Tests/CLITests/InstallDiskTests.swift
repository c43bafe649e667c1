import Foundation
import ProvisionCore
import Testing
import TestSupport

/// A Mac mini that still holds macOS: Talos' installer refuses a disk that is not empty (or an empty
/// GPT) unless the config wipes it, and the node would loop in maintenance. `up` says so before it
/// sends anything; with `install.wipe: true` it installs.
@Suite(.serialized) struct InstallDiskTests {
    @Test(.timeLimit(.minutes(6))) func aMacMiniThatStillHoldsMacOSIsRefusedUntilTheInventorySaysWipe() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            try project.edit { $0.replacingOccurrences(of: "lab:\n  timeScale: 0.02\n", with: "lab:\n  timeScale: 0.02\n  faults:\n    - {node: mini01, fault: disk-holds-macos}\n") }
            let start = LabRecordFile.now()
            let refused = try await project.run(["up", "demo"])
            #expect(refused.status == 3, "refused for safety: \(refused.stderr)")
            for needle in ["mini01", "/dev/nvme0n1", "apfs", "install.wipe: true"] {
                #expect(refused.stderr.contains(needle), "the refusal names \(needle): \(refused.stderr)")
            }
            var record = try LabRecordFile(stateDirectory: project.state)
            let applied = record.since(start).filter { $0.event == "mutation" && $0.method == "ApplyConfiguration" }.compactMap(\.node)
            #expect(!applied.contains("mini01"), "nothing was sent to mini01")
            #expect(!record.since(start).contains { $0.node == "mini01" && $0.stage == "installing" }, "nothing installed")

            try project.edit { text in
                let mini = "    machine: {provider: lab-metal, mac: \"a4:83:e7:00:00:61\", link: enp1s0}\n    install:\n      diskSelector: {model: \"APPLE SSD*\"}"
                    + "   # 2018 (NVMe) and 2014 SSD blade (AHCI) alike; a 2014 HDD model: {type: hdd}\n"
                return text.replacingOccurrences(of: mini, with: mini + "      wipe: true\n")
            }
            let wiped = try await project.run(["up", "demo"])
            #expect(wiped.status == 0, "\(wiped.stderr)")
            record = try LabRecordFile(stateDirectory: project.state)
            #expect(record.since(start).contains { $0.node == "mini01" && $0.stage == "installing" }, "installed once told to wipe")
            #expect(!record.since(start).contains { $0.node == "mini01" && $0.event == "install-failed" })
        }
    }
}
