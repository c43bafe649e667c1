import Foundation
import Lab
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// An independent peer generated at test time by grpcio-tools from Talos' own v1.13.9 protos
/// (Tests/Interop/upstream_talos.py): our protos agree with them field by field, a client made from
/// them reads a simulated node's dry-run apply and its config and pulls and upgrades it, and our
/// client (configs, reboot, Pull, LifecycleService/Upgrade, the legacy Upgrade) works against a
/// server made from them.
@Suite struct UpstreamProtoInteropTests {
    static let script = "\(repositoryRoot)/Tests/Interop/upstream_talos.py"

    /// PEM files for Python (0600); Python's TLS reads Ed25519 keys under the standard label.
    func files(_ credentials: (ca: String, certificate: String, key: String)) throws -> (ca: String, cert: String, key: String) {
        let dir = temporaryDirectory()
        try PrivateFile.write(Array(credentials.ca.utf8), to: "\(dir)/ca.pem")
        try PrivateFile.write(Array(credentials.certificate.utf8), to: "\(dir)/cert.pem")
        try PrivateFile.write(Array(credentials.key.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY").utf8), to: "\(dir)/key.pem")
        return ("\(dir)/ca.pem", "\(dir)/cert.pem", "\(dir)/key.pem")
    }

    @Test func everyFieldNumberAgreesWithTalosProtos() async throws {
        let result = try await Subprocess.run(["python3", Self.script, "compare"])
        #expect(result.status == 0, "protos/ differs from Talos' v1.13.9 protos (grpcio-tools comes from scripts/bootstrap): \(result.stdout)\(result.stderr)")
        let checked = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["checked"] as? Int ?? 0
        #expect(checked > 200, "the comparison covered our messages, enums and methods: \(result.stdout)")
    }

    @Test(.timeLimit(.minutes(2))) func aClientFromTalosProtosReadsTheDryRunAndTheConfig() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let pem = try files(try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"]))
        let dir = temporaryDirectory()
        func dryRun(_ config: String) async throws -> [String: Any] {
            try PrivateFile.write(Array(config.utf8), to: "\(dir)/config.yaml")
            let result = try await Subprocess.run(["python3", Self.script, "client", "--host", lab.node("cp1").spec.address, "--port", "50000",
                                                   "--ca", pem.ca, "--cert", pem.cert, "--key", pem.key, "--config", "\(dir)/config.yaml"])
            guard result.status == 0 else { throw PeerError("upstream_talos.py client failed: \(result.stderr)") }
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        }
        let same = try await dryRun(try lab.config("cp1"))
        #expect(same["mode"] as? String == "NO_REBOOT", "\(same)")
        #expect((same["details"] as? String)?.hasSuffix("No changes.") == true, "\(same)")
        #expect(same["configType"] as? String == "MachineConfigs.config.talos.dev" && same["configID"] as? String == "v1alpha1")
        #expect(same["configHasVersion"] as? Bool == true)
        let udev = try lab.config("cp1").replacingOccurrences(of: "machine:\n", with: "machine:\n    udev:\n        rules:\n            - SUBSYSTEM==\"drm\", MODE=\"0660\"\n")
        let reboot = try await dryRun(udev)
        #expect(reboot["mode"] as? String == "REBOOT", "udev rules are not applied live: \(reboot)")
        #expect((reboot["details"] as? String)?.contains("+    udev:") == true, "Talos' text diff: \(reboot)")
        #expect(await lab.node("cp1").calls.filter { $0.method == "ApplyConfiguration" }.count == 3, "one apply to configure, two dry runs")
    }

    /// What talosctl sees around a bootstrap, read by a client from Talos' protos: a configured
    /// control plane stays `booting` with etcd Preparing (health not yet known) and an empty data
    /// directory; EtcdMemberList answers as v1.13.9 does before any etcd runs (Unknown, "no
    /// controlplane endpoints discovered yet"); Bootstrap is accepted in `booting`, after which the
    /// node runs etcd and turns `running`, and a second Bootstrap is AlreadyExists.
    @Test(.timeLimit(.minutes(2))) func aClientFromTalosProtosBootstrapsABootingControlPlane() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let pem = try files(try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"]))
        let result = try await Subprocess.run(["python3", Self.script, "bootstrap", "--host", lab.node("cp1").spec.address, "--port", "50000",
                                               "--ca", pem.ca, "--cert", pem.cert, "--key", pem.key])
        guard result.status == 0 else { throw PeerError("upstream_talos.py bootstrap failed: \(result.stderr)") }
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let before = out["before"] as? [String: Any] ?? [:]
        #expect(before["stage"] as? String == "booting" && before["etcd"] as? String == "Preparing" && before["etcdHealthUnknown"] as? Bool == true, "\(out)")
        let members = out["membersBefore"] as? [String: Any] ?? [:]
        #expect(members["code"] as? String == "UNKNOWN" && members["message"] as? String == "no controlplane endpoints discovered yet", "\(out)")
        #expect(out["dataBefore"] as? [String] == ["."], "an empty etcd data directory lists only itself: \(out)")
        #expect(out["bootstrap"] as? String == "OK", "\(out)")
        let after = out["after"] as? [String: Any] ?? [:]
        #expect(after["stage"] as? String == "running" && after["etcd"] as? String == "Running", "\(out)")
        #expect((out["membersAfter"] as? [String: Any])?["members"] as? [String] == ["cp1"], "\(out)")
        #expect(out["dataAfter"] as? [String] == [".", "member"], "\(out)")
        #expect(out["again"] as? String == "ALREADY_EXISTS: etcd data directory is not empty", "\(out)")
    }

    /// The generated server on a free port, with a server certificate from `bundle`'s OS CA; its
    /// calls are logged as JSON lines to the returned file.
    func startServer(_ bundle: SecretsBundle, config: String, extra: [String] = []) async throws -> (server: BackgroundProcess, port: Int, log: String) {
        let dir = temporaryDirectory()
        let (ca, caKey) = try bundle.osAuthority()
        let serverKey = SigningKey.ed25519(.init())
        let leaf = try CertificateFactory.serverLeaf(commonName: "cp1", ipAddresses: ["127.0.0.1"], dnsNames: ["cp1"], issuer: ca, issuerKey: caKey, leafKey: serverKey)
        try PrivateFile.write(Array(try CertificateFactory.pem(leaf).utf8), to: "\(dir)/server.pem")
        try PrivateFile.write(Array(serverKey.pem.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY").utf8), to: "\(dir)/server.key")
        try PrivateFile.write(Array(try SecretsBundle.decode(bundle.os.crt).utf8), to: "\(dir)/ca.pem")
        try PrivateFile.write(Array(config.utf8), to: "\(dir)/config.yaml")
        let log = dir + "/calls.jsonl"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let server = try await BackgroundProcess(["python3", Self.script, "server", "--cert", dir + "/server.pem", "--key", dir + "/server.key",
                                                  "--client-ca", dir + "/ca.pem", "--config", dir + "/config.yaml", "--ready", dir + "/ready"] + extra, stdout: log)
        var port = 0
        for _ in 0..<400 where port == 0 {
            port = Int((try? String(contentsOfFile: dir + "/ready", encoding: .utf8)) ?? "") ?? 0
            if port == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        if port == 0 { await server.stop() }
        guard port > 0 else { throw PeerError("the generated server did not start") }
        return (server, port, log)
    }

    func client(_ bundle: SecretsBundle, port: Int) throws -> TalosClient {
        let credentials = try TalosConfig.credentials(bundle: bundle, roles: ["os:admin"])
        var client = try TalosClient(host: "127.0.0.1", port: port, mode: .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key))
        client.timeout = .seconds(20)
        return client
    }

    /// A client from Talos' protos pulls an installer into the system containerd of a simulated
    /// node and upgrades from it, reading both streams to the end; the node then boots it.
    @Test(.timeLimit(.minutes(2))) func aClientFromTalosProtosPullsAndUpgradesASimulatedNode() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let pem = try files(try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"]))
        let image = "factory.talos.dev/nocloud-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.13.9"
        let result = try await Subprocess.run(["python3", Self.script, "upgrade", "--host", lab.node("cp1").spec.address, "--port", "50000",
                                               "--ca", pem.ca, "--cert", pem.cert, "--key", pem.key, "--image", image])
        #expect(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(out["name"] as? String == image && (out["progress"] as? Int ?? 0) >= 1, "the pull streamed progress, then the name: \(out)")
        #expect(out["exitCode"] as? Int == 0 && !((out["messages"] as? [String]) ?? []).isEmpty, "the upgrade streamed its log, then exit code 0: \(out)")
        let methods = await lab.node("cp1").calls.map(\.method)
        #expect(methods.contains { $0.hasSuffix("ImageService/Pull") } && methods.contains { $0.hasSuffix("LifecycleService/Upgrade") }, "\(methods)")
        #expect(await lab.node("cp1").talosVersion != "v1.13.9", "installed into the other slot: nothing runs it before a reboot")
        let credentials = try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"])
        var ours = try TalosClient(host: lab.node("cp1").spec.address, port: 50000,
                                   mode: .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key))
        ours.timeout = .seconds(10)
        _ = try await ours.reboot()
        for _ in 0..<200 where await lab.node("cp1").talosVersion != "v1.13.9" { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await lab.node("cp1").talosVersion == "v1.13.9", "the reboot ran the new slot")
    }

    /// Our Pull, LifecycleService/Upgrade (a non-zero exit code in an OK stream is a failure),
    /// 1.12's ImagePull and legacy Upgrade against a server generated from Talos' protos.
    @Test(.timeLimit(.minutes(2))) func ourUpgradeCallsWorkAgainstAServerFromTalosProtos() async throws {
        let bundle = try SecretsBundle.generate()
        let image = "factory.talos.dev/metal-installer/abc:v1.13.9"
        let good = try await startServer(bundle, config: "version: v1alpha1\n")
        let client = try client(bundle, port: good.port)
        let name = try await client.pull(image)
        let installed = try await client.installUpgrade(image)
        try await client.imagePull(image, deadline: .seconds(30))
        let ack = try await client.legacyUpgrade(image, deadline: .seconds(30))
        await good.server.stop()
        #expect(name == image)
        #expect(installed.exitCode == 0 && installed.messages == ["validating installer", "installing into the inactive slot", "upgrade complete"], "\(installed)")
        #expect(ack == "Upgrade request received")
        let calls = ((try? String(contentsOfFile: good.log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let upgrade = calls.first { $0["method"] as? String == "LifecycleService/Upgrade" }
        #expect(upgrade?["pulledThere"] as? Bool == true, "Pull and Upgrade named the same containerd instance: \(calls)")
        #expect(upgrade?["containerd"] as? String == "CRI/NS_SYSTEM", "talosctl v1.13.9's default, --namespace system: \(calls)")
        #expect(calls.contains { $0["method"] as? String == "MachineService/Upgrade" && $0["image"] as? String == image && $0["force"] as? Bool == false })
        #expect(calls.contains { $0["method"] as? String == "MachineService/ImagePull" && $0["reference"] as? String == image && $0["namespace"] as? String == "NS_SYSTEM" },
                "1.12's ImagePull, as Talos' protos define it: \(calls)")

        let failing = try await startServer(bundle, config: "version: v1alpha1\n", extra: ["--upgrade-exit", "1"])
        let second = try self.client(bundle, port: failing.port)
        _ = try await second.pull(image)
        let error = await #expect(throws: TalosError.self) { try await second.installUpgrade(image) }
        await failing.server.stop()
        #expect("\(error.map { "\($0)" } ?? "")".contains("exited 1"), "an OK stream ending in exit code 1 is a failure: \(String(describing: error))")
    }

    @Test(.timeLimit(.minutes(2))) func ourClientWorksAgainstAServerFromTalosProtos() async throws {
        let bundle = try SecretsBundle.generate()
        let config = "version: v1alpha1\nmachine:\n    type: controlplane\n"
        let (server, port, log) = try await startServer(bundle, config: config)
        defer { Task { await server.stop() } }
        let client = try client(bundle, port: port)
        let live = try await client.applyConfiguration(config, mode: .auto, dryRun: true)
        let staged = try await client.applyConfiguration(config + "    udev: {rules: [x]}\n", mode: .auto, dryRun: true)
        let actor = try await client.reboot()
        let active = try await client.machineConfig(.active)
        await server.stop()
        #expect(live.mode == .noReboot && staged.mode == .reboot)
        #expect(actor == "reboot-upstream-1")
        #expect(active == config)
        let calls = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(calls.contains { $0.contains("\"dry_run\": true") && $0.contains("\"AUTO\"") }, "dry run with AUTO, as sent: \(calls)")
        #expect(calls.contains { $0.contains("\"Reboot\"") } && calls.contains { $0.contains("\"v1alpha1\"") }, "\(calls)")
    }
}
