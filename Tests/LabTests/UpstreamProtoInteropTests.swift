import Foundation
import Lab
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// An independent peer generated at test time by grpcio-tools from Talos' own v1.13.9 protos
/// (Tests/Interop/upstream_talos.py): our protos agree with them field by field, a client made from
/// them reads a simulated node's dry-run apply and its config, and our client works against a
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

    @Test(.timeLimit(.minutes(2))) func ourClientWorksAgainstAServerFromTalosProtos() async throws {
        let bundle = try SecretsBundle.generate()
        let dir = temporaryDirectory()
        let (ca, caKey) = try bundle.osAuthority()
        let serverKey = SigningKey.ed25519(.init())
        let leaf = try CertificateFactory.serverLeaf(commonName: "cp1", ipAddresses: ["127.0.0.1"], dnsNames: ["cp1"], issuer: ca, issuerKey: caKey, leafKey: serverKey)
        try PrivateFile.write(Array(try CertificateFactory.pem(leaf).utf8), to: "\(dir)/server.pem")
        try PrivateFile.write(Array(serverKey.pem.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY").utf8), to: "\(dir)/server.key")
        try PrivateFile.write(Array(try SecretsBundle.decode(bundle.os.crt).utf8), to: "\(dir)/ca.pem")
        let config = "version: v1alpha1\nmachine:\n    type: controlplane\n"
        try PrivateFile.write(Array(config.utf8), to: "\(dir)/config.yaml")
        let log = dir + "/calls.jsonl"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let server = try await BackgroundProcess(["python3", Self.script, "server", "--cert", dir + "/server.pem", "--key", dir + "/server.key",
                                                  "--client-ca", dir + "/ca.pem", "--config", dir + "/config.yaml", "--ready", dir + "/ready"], stdout: log)
        defer { Task { await server.stop() } }
        var port = 0
        for _ in 0..<400 where port == 0 {
            port = Int((try? String(contentsOfFile: dir + "/ready", encoding: .utf8)) ?? "") ?? 0
            if port == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(port > 0, "the generated server started")
        let credentials = try TalosConfig.credentials(bundle: bundle, roles: ["os:admin"])
        var client = try TalosClient(host: "127.0.0.1", port: port, mode: .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key))
        client.timeout = .seconds(20)
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
