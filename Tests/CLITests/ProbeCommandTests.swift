import Foundation
import Testing
import TestSupport
@testable import TalosKit

/// `provision probe` against the independent Python Talos peer in each state a node can be in.
@Suite(.serialized) struct ProbeCommandTests {
    func json(_ result: CLI.Result) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// A project with a secrets bundle, a talosconfig for it, and the OS CA as PEM files for the peer.
    func cluster() async throws -> (dir: String, talosconfig: String, ca: (crt: String, key: String)) {
        let dir = try CLI.project()
        let state = dir + "/state"
        #expect(try await CLI.run(["secrets", "init", "lab", "--state-dir", state], cwd: dir).status == 0)
        #expect(try await CLI.run(["talosconfig", "lab", "--state-dir", state, "--output", dir + "/talosconfig"], cwd: dir).status == 0)
        let bundle = try SecretsBundle.load(path: state + "/secrets.yaml")
        try SecretsBundle.decode(bundle.os.crt).write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try SecretsBundle.decode(bundle.os.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY")
            .write(toFile: dir + "/ca.key", atomically: true, encoding: .utf8)
        return (dir, dir + "/talosconfig", (dir + "/ca.pem", dir + "/ca.key"))
    }

    @Test func maintenanceNodeShowsVersionAndFlagsTheUSBStick() async throws {
        let peer = try await PythonPeer()
        let result = try await CLI.run(["probe", "127.0.0.1:\(peer.port)", "--json"])
        let human = try await CLI.run(["probe", "127.0.0.1:\(peer.port)"])
        await peer.stop()
        #expect(result.status == 0, "\(result.stderr)")
        let object = json(result)
        #expect(object["mode"] as? String == "maintenance")
        #expect(object["version"] as? String == "v1.13.2")
        let disks = object["disks"] as? [[String: Any]] ?? []
        #expect(disks.first { $0["device"] as? String == "/dev/sda" }?["usb"] as? Bool == true)
        #expect(disks.first { $0["device"] as? String == "/dev/nvme0n1" }?["usb"] as? Bool == false)
        #expect(human.stdout.contains("maintenance (Talos v1.13.2, metal)"))
        #expect(human.stdout.contains("USB: never an install target"))
    }

    @Test func configuredNodeOfThisClusterListsEtcdMembers() async throws {
        let (_, talosconfig, ca) = try await cluster()
        let peer = try await PythonPeer(authority: ca)
        let ours = try await CLI.run(["probe", "127.0.0.1:\(peer.port)", "--talosconfig", talosconfig, "--json"])
        let anonymous = try await CLI.run(["probe", "127.0.0.1:\(peer.port)", "--json"])
        let (_, otherTalosconfig, _) = try await cluster()
        let foreign = try await CLI.run(["probe", "127.0.0.1:\(peer.port)", "--talosconfig", otherTalosconfig, "--json"])
        await peer.stop()
        #expect(json(ours)["mode"] as? String == "configured", "\(ours.stdout)\(ours.stderr)")
        #expect((json(ours)["etcdMembers"] as? [[String: Any]])?.count == 2)
        #expect(json(anonymous)["mode"] as? String == "configured-unverified", "\(anonymous.stdout)")
        #expect(json(foreign)["mode"] as? String == "wrong-cluster", "\(foreign.stdout)")
        #expect(ours.status == 0 && anonymous.status == 0)
        #expect(foreign.status == 3, "another cluster's node is refused for safety")
    }

    /// The node of the issue: another cluster's certificate, and it asks for but does not insist on
    /// a client certificate. It must learn nothing: no Version, no Hostname, no Disks.
    @Test func anotherClustersTolerantNodeIsRefusedAndGetsNoCall() async throws {
        let (_, talosconfig, _) = try await cluster()
        let (_, _, theirs) = try await cluster()
        let peer = try await PythonPeer(identity: .issued(by: theirs), clientCertificates: .optional)
        let probe = try await CLI.run(["probe", "127.0.0.1:\(peer.port)", "--talosconfig", talosconfig, "--json"])
        let calls = peer.calls
        await peer.stop()
        #expect(probe.status == 3, "\(probe.stdout)\(probe.stderr)")
        #expect(json(probe)["mode"] as? String == "wrong-cluster", "\(probe.stdout)")
        #expect(calls.isEmpty, "the peer received RPCs: \(calls)")
    }

    /// `up --only apply-config@cp1` with cp1's address answered by that node: refused, exit 3,
    /// and the machine config (the cluster's secrets) never leaves.
    @Test func applyConfigToAnotherClustersNodeSendsNothing() async throws {
        let (dir, _, _) = try await cluster()
        let (_, _, theirs) = try await cluster()
        let file = dir + "/inventories/lab.yaml"
        var text = try String(contentsOfFile: file, encoding: .utf8)
        text = text.replacingOccurrences(of: "lab:\n  timeScale: 0\n", with: "")
            .replacingOccurrences(of: "address: 127.1.0.11\n    machine: {provider: pve, cpus: 2, memory: 4GiB,", with: "address: 127.1.0.41\n    machine: {provider: metal, link: enp1s0,")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(text.contains("127.1.0.41") && !text.contains("timeScale"), "the fixture changed shape")
        try FileManager.default.copyItem(atPath: repositoryRoot + "/playbooks/up.yaml", toPath: dir + "/playbooks/up.yaml")
        let peer = try await PythonPeer(identity: .issued(by: theirs), clientCertificates: .optional, bind: "127.1.0.41", port: 50000)
        let up = try await CLI.run(["up", "lab", "--only", "apply-config@cp1", "--state-dir", dir + "/state"], cwd: dir, timeout: .seconds(120))
        let calls = peer.calls
        await peer.stop()
        #expect(up.status == 3, "\(up.stderr)")
        #expect(up.stderr.contains("not this cluster's"), "\(up.stderr)")
        #expect(calls.isEmpty, "the peer received RPCs: \(calls)")
    }

    @Test func closedPortIsUnreachableExitOne() async throws {
        let result = try await CLI.run(["probe", "127.0.0.1:1", "--json"])
        #expect(result.status == 1)
        #expect(json(result)["mode"] as? String == "unreachable")
    }
}
