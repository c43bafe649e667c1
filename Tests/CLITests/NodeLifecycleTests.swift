import Foundation
import ProvisionCore
import Testing
import TestSupport

/// Nodes in and out of a running demo cluster: a worker added by `up` without touching the others,
/// retired by `provision remove`; a control plane replaced (cp4 in, cp3 out) only once etcd can
/// afford it; an orphan (dropped from the inventory, still in the cluster) reported and retired.
@Suite(.serialized) struct NodeLifecycleTests {
    /// A node added to the demo: 16 GiB, since the test driver's pool holds 100 GiB and the demo's
    /// four 20 GiB disks and the Talos disk image they are copied from are in it already.
    static func block(_ name: String, _ address: String, role: String = "worker") -> String {
        """
          - name: \(name)
            role: \(role)
            image: vm
            address: \(address)
            machine: {provider: lab-libvirt, cpus: 2, memory: 4GiB, disk: 16GiB, mac: "52:54:00:00:00:\(address.split(separator: ".").last!)"}
            install: {disk: /dev/vda}

        """
    }

    func add(_ project: DemoProject, _ block: String) throws {
        try project.edit { $0.replacingOccurrences(of: "\ngpuPools:", with: "\n" + block + "gpuPools:") }
    }

    func drop(_ project: DemoProject, _ block: String) throws {
        try project.edit { $0.replacingOccurrences(of: block, with: "") }
    }

    func domains(_ project: DemoProject) async throws -> [String] {
        try await Subprocess.run(["virsh", "-c", "test://\(project.state)/lab/libvirt-lab-libvirt.xml", "list", "--all", "--name"])
            .stdout.split(separator: "\n").map(String.init).sorted()
    }

    func members(_ project: DemoProject) async throws -> [String] {
        let status = try await project.run(["status", "demo", "--json"])
        let nodes = project.json(status)["nodes"] as? [[String: Any]] ?? []
        return nodes.filter { $0["etcdMember"] as? Bool == true }.compactMap { $0["name"] as? String }.sorted()
    }

    @Test(.timeLimit(.minutes(6))) func aWorkerComesInWithUpAndGoesWithRemove() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            let before = try project.bootIDs()
            let w2 = Self.block("w2", "127.0.0.22")
            try add(project, w2)
            let added = try await project.run(["up", "demo"])
            #expect(added.status == 0, "\(added.stderr)")
            let after = try project.bootIDs()
            for (node, boot) in before { #expect(after[node] == boot, "\(node) was not rebooted by adding w2") }
            #expect(try await domains(project).contains("w2"))

            // The real kubectl sees it Ready, on the lab served from the same state.
            let lab = try await project.serve()
            let ready = try await project.kubectl(["get", "node", "w2", "--no-headers"])
            #expect(ready.stdout.contains(" Ready "), "\(ready.stdout)\(ready.stderr)")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))

            let unknown = try await project.run(["remove", "demo/w9", "--yes"])
            #expect(unknown.status == 64, "\(unknown.stderr)")
            #expect(unknown.stderr.contains("cp1") && unknown.stderr.contains("w2"), "the nodes are listed: \(unknown.stderr)")

            let etcdBefore = try await members(project)
            let removed = try await project.run(["remove", "demo/w2", "--yes"])
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(try await !domains(project).contains("w2"), "the VM is gone")
            try drop(project, w2)
            let status = try await project.run(["status", "demo", "--json"])
            let names = (project.json(status)["nodes"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(!names.contains("w2"))
            #expect((project.json(status)["orphans"] as? [Any])?.isEmpty == true, "no orphan left: \(status.stdout)")
            #expect(try await members(project) == etcdBefore, "etcd unchanged")
            let served = try await project.serve()
            let nodes = try await project.kubectl(["get", "nodes", "-o", "name"])
            #expect(!nodes.stdout.contains("node/w2"), "the Node is gone: \(nodes.stdout)")
            served.signal(SIGINT)
            _ = try await served.finish(timeout: .seconds(30))
        }
    }

    @Test(.timeLimit(.minutes(6))) func aControlPlaneIsReplacedOnlyWhenEtcdCanAffordIt() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            let domainsBefore = try await domains(project)
            let refused = try await project.run(["remove", "demo/cp3", "--yes"])
            #expect(refused.status == 3, "\(refused.stderr)")
            #expect(refused.stderr.contains("2 members"), "the rule is named: \(refused.stderr)")
            let membersAfterRefusal = try await members(project), domainsAfterRefusal = try await domains(project)
            #expect(membersAfterRefusal == ["cp1", "cp2", "cp3"] && domainsBefore == domainsAfterRefusal, "nothing touched")

            try add(project, Self.block("cp4", "127.0.0.14", role: "controlplane"))
            #expect(try await project.run(["up", "demo"]).status == 0)
            #expect(try await members(project) == ["cp1", "cp2", "cp3", "cp4"])
            let removed = try await project.run(["remove", "demo/cp3", "--yes"])
            #expect(removed.status == 0, "\(removed.stderr)")
            try project.edit { text in
                let cp3 = text.range(of: "  - name: cp3\n")!, next = text.range(of: "  - name: mini01\n")!
                return String(text[..<cp3.lowerBound]) + String(text[next.lowerBound...])
            }
            #expect(try await members(project) == ["cp1", "cp2", "cp4"], "3 healthy members")
            let plan = try await project.run(["plan", "demo"])
            #expect(plan.status == 0, "converged, no orphan: \(plan.stdout)")
        }
    }

    @Test(.timeLimit(.minutes(6))) func aNodeDroppedFromTheInventoryIsAnOrphanUntilRemoved() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let w2 = Self.block("w2", "127.0.0.22")
            try add(project, w2)
            #expect(try await project.run(["up", "demo"]).status == 0)
            try drop(project, w2)
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect(plan.status == 0, "an orphan is not a change up makes: \(plan.stdout)")
            let orphans = project.json(plan)["orphans"] as? [[String: Any]] ?? []
            #expect(orphans.map { $0["node"] as? String } == ["w2"], "\(plan.stdout)")
            let up = try await project.run(["up", "demo"])
            let domainsAfterUp = try await domains(project)
            #expect(up.status == 0 && domainsAfterUp.contains("w2"), "up never touches an orphan")
            let removed = try await project.run(["remove", "demo/w2", "--yes"])
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(!removed.stderr.contains("leave@w2: already done"), "the orphan still runs, so it is reset: \(removed.stderr)")
            #expect(try await !domains(project).contains("w2"))
            let again = try await project.run(["plan", "demo", "--json"])
            #expect((project.json(again)["orphans"] as? [Any])?.isEmpty == true, "\(again.stdout)")
        }
    }

    /// Saving a VM in Unraid's form drops provision's mark from its metadata (unraid/webgui
    /// `libvirt.php`): the VM is still known as provision's by the MAC it was made with, so once
    /// dropped from the inventory it is an orphan its provider holds, not a stranger.
    @Test(.timeLimit(.minutes(4))) func aVMWhoseMarkUnraidsFormDroppedIsStillFoundByItsMAC() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let w2 = Self.block("w2", "127.0.0.22")
            try add(project, w2)
            #expect(try await project.run(["up", "demo"]).status == 0)
            let file = project.state + "/lab/libvirt-lab-libvirt.xml"
            let hypervisor = try String(contentsOfFile: file, encoding: .utf8)
            let saved = hypervisor.replacingOccurrences(of: #"<provision:node[^>]*>demo/w2</provision:node>"#, with: "", options: .regularExpression)
            #expect(saved != hypervisor, "w2 carried the mark")
            try saved.write(toFile: file, atomically: true, encoding: .utf8)
            try drop(project, w2)
            let plan = try await project.run(["plan", "demo", "--json"])
            let orphan = (project.json(plan)["orphans"] as? [[String: Any]] ?? []).first { $0["node"] as? String == "w2" }
            #expect((orphan?["reason"] as? String)?.contains("provider lab-libvirt") == true, "\(plan.stdout)")
        }
    }
}
