import Foundation
import Providers
import Testing
import TestSupport

/// `provision machines` against fakepve from an inventory, as a user would point it at their PVE:
/// the endpoint, pinned fingerprint and token reference are inventory settings.
@Suite struct MachinesOnProxmoxTests {
    func project(_ pve: FakePVE) throws -> String {
        let dir = try CLI.project()
        for name in ["machines-up", "machines-down"] {
            try FileManager.default.copyItem(atPath: "\(repositoryRoot)/playbooks/\(name).yaml", toPath: "\(dir)/playbooks/\(name).yaml")
        }
        let nodes = (1...3).map { index in
            """
              - name: cp\(index)
                role: controlplane
                image: vm
                address: 127.1.0.1\(index)
                machine: {provider: pve, cpus: 2, memory: 2GiB, disk: 16GiB, mac: "bc:24:11:00:00:1\(index)"}
                install: {disk: /dev/sda}
            """
        }.joined(separator: "\n")
        let inventory = """
            apiVersion: provision/v1
            kind: Inventory
            cluster: {name: pvetest, talosVersion: v1.13.2, kubernetesVersion: v1.34.2, endpoint: "https://127.1.0.10:6443",
                      vip: 127.1.0.10, nodeCIDR: 127.1.0.0/24, gateway: 127.1.0.1, podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/12}
            secrets: {encryption: plaintext}
            providers:
              pve:
                kind: proxmox
                endpoint: https://\(pve.host):8006
                node: pve1
                tokenID: "\(pve.tokenID)"
                tokenSecret: env:TEST_PVE_SECRET
                fingerprint: \(pve.fingerprint)
                vmIDRange: 9000-9099
            images:
              vm: {schematic: ../images/vm.yaml, platform: nocloud}
            nodes:
            \(nodes)
            """
        try inventory.write(toFile: "\(dir)/inventories/pve.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func machines(_ result: CLI.Result) throws -> [String: [String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let list = object?["machines"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: list.map { ($0["node"] as? String ?? "", $0) })
    }

    /// A stock PVE `local` storage (iso, vztmpl, backup: no `import`): the preflight fails once, in
    /// one pass, with one message naming all three nodes; nothing is retried and no VM is made.
    @Test func aStorageWithoutImportFailsOnceForEveryNode() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        var api = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint, tokenID: pve.tokenID, secret: pve.secret, node: "pve1")
        api.pollInterval = .milliseconds(20)
        let dir = try project(pve)
        let started = ContinuousClock.now
        let up = try await CLI.run(["machines", "up", "\(dir)/inventories/pve.yaml", "--state-dir", temporaryDirectory(), "--json"], cwd: dir,
                                   environment: ["TEST_PVE_SECRET": pve.secret])
        let took = ContinuousClock.now - started
        #expect(up.status == 1, "\(up.stderr)")
        let lines = up.stdout.split(separator: "\n").map(String.init)
        let failed = CLI.events(lines, kind: "step.failed")
        #expect(failed.map { $0["step"] as? String } == ["machine-preflight"], "one failure: \(failed)")
        #expect(CLI.events(lines, kind: "step.retrying").isEmpty, "configuration is not retried")
        let message = failed.first?["message"] as? String ?? ""
        #expect(message.components(separatedBy: "does not hold 'import' files").count == 2, "one message: \(message)")
        #expect(message.contains("cp1, cp2, cp3") && message.contains("isoStorage"), "names every node and the fix: \(message)")
        #expect(CLI.events(lines, kind: "step.blocked").count == 3, "no machine step ran")
        #expect(try await api.vms().isEmpty, "no VM was created")
        #expect(took < .seconds(10), "fails in one pass: \(took)")
    }

    /// PVE 8.3 takes no qcow2 into `import` content (libpve-storage-perl 8.3.6, PVE 8.4, added it):
    /// nocloud nodes are refused before anything is made, naming the version and 8.4; nothing lands
    /// in `import`. PVE 9.0 imports them.
    @Test func aNocloudImageOnPVE83IsRefusedBeforeAnythingIsMade() async throws {
        for (version, refused) in [("8.3.2", true), ("9.0.10", false)] {
            let pve = try await FakePVE(arguments: ["--pve-version", version])
            var api = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint, tokenID: pve.tokenID, secret: pve.secret, node: "pve1")
            api.pollInterval = .milliseconds(20)
            _ = try await api.call(.PUT, "/storage/local", [("content", "iso,vztmpl,backup,import")])
            let dir = try project(pve)
            let up = try await CLI.run(["machines", "up", "\(dir)/inventories/pve.yaml", "--state-dir", temporaryDirectory(), "--json"], cwd: dir,
                                       environment: ["TEST_PVE_SECRET": pve.secret])
            let tasks = try await api.call(.GET, "/nodes/pve1/tasks", [("limit", "500")]) as? [[String: Any]] ?? []
            let imported = try await api.volumes(storage: "local", content: "import")
            if refused {
                #expect(up.status == 1, "\(up.stderr)")
                let message = CLI.events(up.stdout.split(separator: "\n").map(String.init), kind: "step.failed").first?["message"] as? String ?? ""
                #expect(message.contains("Proxmox VE 8.3.2") && message.contains("8.4") && message.contains("cp1, cp2, cp3") && message.contains("metal platform"), "\(message)")
                #expect(tasks.isEmpty && imported.isEmpty, "nothing downloaded, nothing created: \(tasks) \(imported)")
                #expect(try await api.vms().isEmpty)
            } else {
                #expect(up.status == 0, "\(up.stderr)")
                #expect(imported.count == 1, "one nocloud image in import content on 9.0: \(imported)")
            }
            await pve.stop()
        }
    }

    /// A token that may not download into the ISO storage is refused in the preflight, naming the
    /// privilege and where to grant it; nothing is made.
    @Test func aTokenWithoutTheDownloadPrivilegeIsRefusedNamingIt() async throws {
        let user = "provision@pve!ci"
        let grants = #"[["\#(user)", "/", "VM.Allocate", "VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Config.HWType", "VM.Config.CDROM", "VM.PowerMgmt", "VM.Audit", "VM.Monitor", "Datastore.AllocateSpace", "Datastore.Audit", "Sys.Audit", "Sys.Modify", "SDN.Use"]]"#
        let pve = try await FakePVE(arguments: ["--grants", grants], tokenID: user)
        defer { Task { await pve.stop() } }
        let dir = try project(pve)
        let up = try await CLI.run(["machines", "up", "\(dir)/inventories/pve.yaml", "--state-dir", temporaryDirectory(), "--json"], cwd: dir,
                                   environment: ["TEST_PVE_SECRET": pve.secret])
        #expect(up.status == 1, "\(up.stderr)")
        let message = CLI.events(up.stdout.split(separator: "\n").map(String.init), kind: "step.failed").first?["message"] as? String ?? ""
        #expect(message.contains("lacks Datastore.AllocateTemplate on /storage/local"), "\(message)")
        var api = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint, tokenID: pve.tokenID, secret: pve.secret, node: "pve1")
        api.pollInterval = .milliseconds(20)
        #expect(try await api.vms().isEmpty)
    }

    @Test func upListDownAgainstFakePVE() async throws {
        let pve = try await FakePVE()
        defer { Task { await pve.stop() } }
        var api = ProxmoxClient(host: pve.host, fingerprint: pve.fingerprint, tokenID: pve.tokenID, secret: pve.secret, node: "pve1")
        api.pollInterval = .milliseconds(20)
        _ = try await api.call(.PUT, "/storage/local", [("content", "iso,vztmpl,backup,import")])
        let dir = try project(pve)
        let state = temporaryDirectory()
        let env = ["TEST_PVE_SECRET": pve.secret]
        let inventory = "\(dir)/inventories/pve.yaml"

        let up = try await CLI.run(["machines", "up", inventory, "--state-dir", state, "--json"], cwd: dir, environment: env)
        #expect(up.status == 0, "\(up.stderr)")
        #expect(CLI.events(up.stdout.split(separator: "\n").map(String.init), kind: "step.applied").count == 3)
        let again = try await CLI.run(["machines", "up", inventory, "--state-dir", state, "--json"], cwd: dir, environment: env)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(CLI.events(again.stdout.split(separator: "\n").map(String.init), kind: "step.applied").isEmpty, "a re-run creates nothing")
        let downloads = (try await api.call(.GET, "/nodes/pve1/tasks", [("limit", "500")]) as? [[String: Any]] ?? []).filter { $0["type"] as? String == "download" }
        #expect(downloads.count == 1, "one image download for three VMs")

        let list = try await CLI.run(["machines", "list", inventory, "--json"], cwd: dir, environment: env)
        #expect(list.status == 0, "\(list.stderr)")
        let seen = try machines(list)
        #expect(Set(seen.keys) == ["cp1", "cp2", "cp3"])
        #expect(seen.values.allSatisfy { $0["state"] as? String == "running" }, "\(seen)")
        #expect(seen.values.allSatisfy { (9000...9099).contains(Int($0["id"] as? String ?? "") ?? 0) })

        let down = try await CLI.run(["machines", "down", inventory, "--node", "cp2", "--yes", "--state-dir", state], cwd: dir, environment: env)
        #expect(down.status == 0, "\(down.stderr)")
        let after = try machines(try await CLI.run(["machines", "list", inventory, "--json"], cwd: dir, environment: env))
        #expect(after["cp2"]?["state"] as? String == "absent")
        #expect(after["cp1"]?["state"] as? String == "running")

        for output in [up, again, list, down] {
            #expect(!output.stdout.contains(pve.secret) && !output.stderr.contains(pve.secret), "the token secret never reaches output")
        }
    }
}
