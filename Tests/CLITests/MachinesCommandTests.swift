import Foundation
import ProvisionCore
import Testing
import TestSupport

/// `provision machines` as users and scripts see it, on the demo lab (libvirt's test driver).
@Suite struct MachinesCommandTests {
    @Test func listShowsWhatEachProviderReports() async throws {
        let result = try await CLI.run(["machines", "list", "demo", "--json", "--state-dir", temporaryDirectory()])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let machines = object?["machines"] as? [[String: Any]] ?? []
        #expect(machines.count == 6)
        let cp1 = machines.first { $0["node"] as? String == "cp1" }
        #expect(cp1?["provider"] as? String == "lab-libvirt")
        #expect(cp1?["state"] as? String == "absent", "a fresh lab hypervisor has no domains")
        let mini = machines.first { $0["node"] as? String == "mini01" }
        #expect(["unknown", "running"].contains(mini?["state"] as? String ?? ""))
    }

    @Test func upOneNodeCreatesItsVM() async throws {
        let state = temporaryDirectory()
        let result = try await DemoLabLock.exclusive { try await CLI.run(["machines", "up", "demo", "--node", "cp1", "--state-dir", state, "--json"]) }
        #expect(result.status == 0, "\(result.stderr)")
        let applied = CLI.events(result.stdout.split(separator: "\n").map(String.init), kind: "step.applied")
        #expect(applied.map { $0["step"] as? String } == ["machine-preflight", "machine@cp1"], "the pool defined, then the VM made")
        #expect((applied.last?["outputs"] as? [String: String])?["power"] == "running")
        let unknown = try await CLI.run(["machines", "up", "demo", "--node", "nope", "--state-dir", state])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("cp1, cp2"))
    }

    /// A VM whose bridge the host lacks (Unraid's `br0` with bridging off) is refused by the
    /// preflight, which names the bridges the host has; nothing is created.
    @Test func aBridgeTheHostLacksIsNamedBeforeAnythingIsMade() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            try project.edit { $0.replacingOccurrences(of: "disk: 20GiB, mac: \"52:54:00:00:00:21\"}", with: "disk: 20GiB, mac: \"52:54:00:00:00:21\", bridge: br9}") }
            let result = try await project.run(["machines", "up", "demo", "--node", "w1"])
            #expect(result.status == 1 && result.stderr.contains("bridge br9 does not exist") && result.stderr.contains("Enable bridging") && result.stderr.contains("(br0)"),
                    "\(result.stderr)")
            let list = try await project.run(["machines", "list", "demo", "--json"])
            let rows = (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["machines"] as? [[String: Any]] ?? []
            #expect(rows.first { $0["node"] as? String == "w1" }?["state"] as? String == "absent", "nothing was made: \(rows)")
        }
    }

    @Test func downRefusesMetalAndAsksForConfirmation() async throws {
        let metal = try await CLI.run(["machines", "down", "demo", "--node", "mini01", "--yes"])
        #expect(metal.status == 3)
        #expect(metal.stderr.contains("bare metal"))
        let unconfirmed = try await CLI.run(["machines", "down", "demo", "--node", "cp1"])
        #expect(unconfirmed.status == 3)
        #expect(unconfirmed.stderr.contains("--yes"))
    }

    @Test func theLabHypervisorOutlivesEachInvocation() async throws {
        let state = temporaryDirectory()
        func states() async throws -> [String: String] {
            let list = try await CLI.run(["machines", "list", "demo", "--json", "--state-dir", state])
            let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let rows = object?["machines"] as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["node"] as? String ?? "", $0["state"] as? String ?? "") })
        }
        let up = try await DemoLabLock.exclusive { try await CLI.run(["machines", "up", "demo", "--node", "cp1", "--state-dir", state]) }
        #expect(up.status == 0, "\(up.stderr)")
        #expect(try await states()["cp1"] == "running", "a later process sees the VM the first one made")
        #expect(try await states()["cp2"] == "absent")

        // virsh, libvirt's own client, reads the same file: our format is the test driver's.
        let file = "\(state)/lab/libvirt-lab-libvirt.xml"
        let virsh = try await Subprocess.run(["virsh", "-c", "test://\(file)", "list", "--all", "--name"])
        #expect(virsh.status == 0, "\(virsh.stderr)")
        #expect(virsh.stdout.split(separator: "\n").map(String.init) == ["cp1"], "\(virsh.stdout)")
        let volumes = try await Subprocess.run(["virsh", "-c", "test://\(file)", "vol-list", "default"])
        #expect(volumes.stdout.contains("/mnt/user/domains/cp1.raw"), "in the pool provision defined at Unraid's domains share: \(volumes.stdout)")

        let down = try await DemoLabLock.exclusive { try await CLI.run(["machines", "down", "demo", "--node", "cp1", "--yes", "--state-dir", state]) }
        #expect(down.status == 0, "\(down.stderr)")
        #expect(try await states()["cp1"] == "absent")
    }
}

/// A libvirt host as Unraid's: no storage pool until `up` defines one (shown in the plan first, once),
/// and VMs libvirt starts with the host, so a host reboot brings the cluster back without provision.
@Suite struct UnraidHostTests {
    func changes(_ state: String) async throws -> [[String: Any]] {
        let plan = try await CLI.run(["plan", "demo", "--json", "--state-dir", state])
        let object = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]
        return object?["changes"] as? [[String: Any]] ?? []
    }

    @Test(.timeLimit(.minutes(5))) func thePoolIsDefinedOnceAndAutostartedVMsComeBackAfterAHostReboot() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            let host = try await changes(state).filter { $0["resource"] as? String == "host" }.compactMap { $0["reason"] as? String }
            #expect(host.count == 1 && host[0].contains("define storage pool default") && host[0].contains("/mnt/user/domains"), "\(host)")
            let up = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(up.status == 0, "\(up.stderr)")
            let file = "\(state)/lab/libvirt-lab-libvirt.xml"
            let pools = try await Subprocess.run(["virsh", "-c", "test://\(file)", "pool-dumpxml", "default"])
            #expect(pools.stdout.contains("<path>/mnt/user/domains</path>"), "\(pools.stdout)\(pools.stderr)")
            #expect(try await changes(state).isEmpty, "a second up changes nothing")

            let list = try await CLI.run(["machines", "list", "demo", "--json", "--state-dir", state])
            let rows = (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["machines"] as? [[String: Any]] ?? []
            let vms = rows.filter { $0["provider"] as? String == "lab-libvirt" }
            #expect(vms.count == 4 && vms.allSatisfy { $0["autostart"] as? Bool == true }, "\(vms)")

            let before = try SafeResetFlowTests.Twin(state)
            let reboot = try await CLI.run(["lab", "host-reboot", "demo", "lab-libvirt", "--state-dir", state])
            #expect(reboot.status == 0 && reboot.stdout.contains("started again (autostart): cp1, cp2, cp3, w1"), "\(reboot.stdout)\(reboot.stderr)")
            let after = try SafeResetFlowTests.Twin(state)
            for vm in ["cp1", "cp2", "cp3", "w1"] { #expect(after.bootID(vm) != before.bootID(vm), "\(vm) went down with its host and booted again") }
            #expect(after.bootID("mini01") == before.bootID("mini01"), "a Mac mini is not on that host")
            #expect(try await changes(state).isEmpty, "the cluster came back by itself: nothing for up to do")
        }
    }
}

/// Creates run side by side up to the provider's `maxParallel`, the limit held only around the
/// create: judged from the lab's record of each create's begin and end on a lab whose libvirt host
/// takes 2 s (scaled) per create.
@Suite(.serialized) struct ParallelCreateTests {
    /// (most creates at once, first begin to last end in seconds) from the lab's record.
    func creates(_ project: DemoProject) throws -> (overlap: Int, span: Double, count: Int) {
        let entries = try LabRecordFile(stateDirectory: project.state).entries.filter { $0.event == "machine" && $0.method == "create" }
        var running = 0, most = 0
        for entry in entries.sorted(by: { ($0.t, $0.stage == "end" ? 0 : 1) < ($1.t, $1.stage == "end" ? 0 : 1) }) {
            running += entry.stage == "begin" ? 1 : -1
            most = max(most, running)
        }
        let span = Double((entries.map(\.t).max() ?? 0) - (entries.map(\.t).min() ?? 0)) / 1000
        return (most, span, entries.filter { $0.stage == "begin" }.count)
    }

    func project(maxParallel: Int) throws -> DemoProject {
        let project = try DemoProject()
        try project.edit {
            $0.replacingOccurrences(of: "    uri: test:///default\n", with: "    uri: test:///default\n    maxParallel: \(maxParallel)\n")
                .replacingOccurrences(of: "lab:\n  timeScale: 0.02\n", with: "lab:\n  timeScale: 0.2\n  delays: {libvirtCreate: 10s}\n")
        }
        return project
    }

    @Test(.timeLimit(.minutes(10))) func fourVMsAreCreatedInAboutOneCreateTime() async throws {
        let project = try project(maxParallel: 4)
        let result = try await DemoLabLock.exclusive { try await project.run(["machines", "up", "demo"]) }
        #expect(result.status == 0, "\(result.stderr)")
        let (overlap, span, count) = try creates(project)
        #expect(count == 4, "cp1, cp2, cp3 and w1 were created")
        #expect(overlap == 4, "all four creates at once: \(overlap)")
        #expect(span >= 2 && span < 3.5, "about one 2 s create, not four: \(span) s")
        let again = try await DemoLabLock.exclusive { try await project.run(["machines", "up", "demo"]) }
        let afterAgain = try creates(project).count
        #expect(again.status == 0 && afterAgain == 4, "a second run creates nothing")
    }

    @Test(.timeLimit(.minutes(10))) func neverMoreThanMaxParallelAtOnce() async throws {
        let project = try project(maxParallel: 2)
        let result = try await DemoLabLock.exclusive { try await project.run(["machines", "up", "demo"]) }
        #expect(result.status == 0, "\(result.stderr)")
        let (overlap, span, count) = try creates(project)
        #expect(count == 4)
        #expect(overlap == 2, "two at a time: \(overlap)")
        #expect(span >= 4 && span < 6, "two waves of 2 s: \(span) s")
    }

    @Test func maxParallelIsValidated() async throws {
        let project = try DemoProject()
        try project.edit { $0.replacingOccurrences(of: "    uri: test:///default\n", with: "    uri: test:///default\n    maxParallel: 0\n") }
        let result = try await project.run(["validate", "demo"])
        #expect(result.status == 64 && result.stderr.contains("maxParallel") && result.stderr.contains("1 to 64"), "\(result.stderr)")
    }
}
