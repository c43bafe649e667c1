import Crypto
import Foundation
import Testing
@testable import ProvisionCore
@testable import TalosKit

/// Our Talos client against an independent peer: talos-linux-api's MachineServiceBase on grpclib,
/// with Python's TLS stack and an Ed25519 certificate like a node in maintenance mode.
@Suite(.serialized) struct TalosClientInteropTests {
    final class PythonPeer: @unchecked Sendable {
        // @unchecked: the Process is only touched from the test that owns this peer.
        let process = Process()
        var child: ChildProcess?
        var port = 0
        var log = ""

        /// What the peer received, one JSON object per call.
        var calls: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let spkiPin: String

        /// Maintenance (self-signed) by default; with `authority`, a configured node: server certificate
        /// issued by that OS CA (PEM files) and client certificates required.
        init(authority: (crt: String, key: String)? = nil) async throws {
            let dir = Peer.temporaryDirectory()
            let issue = authority.map { ca in """
                printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nkeyUsage=digitalSignature\\n' > ext.cnf && \
                openssl req -new -key key.pem -subj /CN=cp1 -out req.csr 2>/dev/null && \
                openssl x509 -req -in req.csr -CA '\(ca.crt)' -CAkey '\(ca.key)' -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem 2>/dev/null &&
                """ } ?? "openssl req -x509 -new -key key.pem -subj /CN=maintenance-service.talos.dev -days 1 -out cert.pem 2>/dev/null && "
            let keygen = try await Peer.run(["sh", "-c", """
                cd '\(dir)' && openssl genpkey -algorithm ed25519 -out key.pem 2>/dev/null && \(issue) \
                openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64
                """])
            #expect(keygen.status == 0)
            spkiPin = keygen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "\(repository)/Tests/Interop/talos_peer.py", "--cert", dir + "/cert.pem", "--key", dir + "/key.pem",
                                 "--ready", dir + "/ready"] + (authority.map { ["--client-ca", $0.crt] } ?? [])
            log = dir + "/calls.jsonl"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: log)
            child = try await ChildProcess.launch(process)
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, !FileManager.default.fileExists(atPath: dir + "/ready") {
                try await Task.sleep(for: .milliseconds(50))
            }
            let text = (try? String(contentsOfFile: dir + "/ready", encoding: .utf8)) ?? ""
            port = Int(text) ?? 0
            #expect(port > 0, "the Python Talos peer did not start (talos-linux-api and grpclib come from scripts/bootstrap)")
        }

        func stop() async {
            kill(process.processIdentifier, SIGKILL)
            _ = await child?.exited()
        }
    }

    @Test func versionInMaintenanceModeOverEd25519TLS() async throws {
        let peer = try await PythonPeer()
        let client = TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        let version = try? await client.version()
        await peer.stop()
        #expect(version?.version.tag == "v1.13.2")
        #expect(version?.platform.name == "metal")
    }

    @Test func maintenanceCertificatePinIsEnforced() async throws {
        let peer = try await PythonPeer()
        let pinned = TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: peer.spkiPin))
        let good = try? await pinned.version()
        var wrong = TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: Data(SHA256.hash(data: [1, 2, 3])).base64EncodedString()))
        wrong.timeout = .seconds(3)
        let bad = try? await wrong.version()
        await peer.stop()
        #expect(good?.version.tag == "v1.13.2")
        #expect(bad == nil, "a pin mismatch must fail the handshake")
    }

    @Test func configuredModeUsesEd25519ClientCertificates() async throws {
        let bundle = try SecretsBundle.generate()
        let dir = Peer.temporaryDirectory()
        try Peer.write(try SecretsBundle.decode(bundle.os.crt), dir + "/ca.pem")
        try Peer.write(try SecretsBundle.decode(bundle.os.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY"), dir + "/ca.key")
        let peer = try await PythonPeer(authority: (dir + "/ca.pem", dir + "/ca.key"))
        let (ca, caKey) = try bundle.osAuthority()
        let leaf = SigningKey.ed25519(.init())
        let certificate = try CertificateFactory.talosClient(roles: ["os:admin"], caCertificate: ca, caKey: caKey, leafKey: leaf)
        let mode = TalosTLS.Mode.configured(caPEM: try SecretsBundle.decode(bundle.os.crt), certificatePEM: try CertificateFactory.pem(certificate), keyPEM: leaf.pem)
        let version = try? await TalosClient(host: "127.0.0.1", port: peer.port, mode: mode).version()
        // Without a client certificate the configured node refuses the handshake.
        var anonymous = TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        anonymous.timeout = .seconds(3)
        let refused = try? await anonymous.version()
        await peer.stop()
        #expect(version?.version.tag == "v1.13.2", "mutual Ed25519 TLS with the peer")
        #expect(refused == nil)
    }

    @Test func callsCarryWhatTalosExpects() async throws {
        let peer = try await PythonPeer()
        let client = TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        let applied = try? await client.applyConfiguration("version: v1alpha1\n")
        let bootstrap = try? await client.bootstrap()
        let actor = try? await client.resetSystemPartitions()
        let members = try? await client.etcdMembers()
        let disks = try? await client.disks()
        let hostname = try? await client.hostname()
        let calls = peer.calls
        await peer.stop()
        #expect(applied?.modeDetails == "applied")
        let apply = calls.first { $0["method"] as? String == "ApplyConfiguration" }
        #expect(apply?["mode"] as? Int == 1, "ApplyConfiguration always sends an explicit mode (AUTO), never the REBOOT default")
        #expect(apply?["data"] as? String == "version: v1alpha1\n")
        #expect(bootstrap == .alreadyBootstrapped, "AlreadyExists means etcd was bootstrapped before")
        #expect(actor == "reset-1")
        let reset = calls.first { $0["method"] as? String == "Reset" }
        #expect(reset?["graceful"] as? Bool == true && reset?["reboot"] as? Bool == true)
        #expect((reset?["partitions"] as? [[Any]])?.map { "\($0[0])" } == ["STATE", "EPHEMERAL"])
        #expect(reset?["mode"] as? Int == 1, "SYSTEM_DISK: user disks can never be touched")
        #expect(members?.map(\.hostname) == ["cp1", "cp2"])
        #expect(members?.last?.isLearner == true)
        #expect(disks?.map(\.deviceName) == ["/dev/nvme0n1", "/dev/sda"])
        #expect(disks?.first?.type == .nvme)
        #expect(hostname == "cp1")
    }

    @Test func unreachableNodeIsATransientTypedError() async throws {
        var client = TalosClient(host: "127.0.0.1", port: 1, mode: .maintenance(spkiPin: nil))
        client.timeout = .seconds(2)
        let started = ContinuousClock.now
        do {
            _ = try await client.version()
            Issue.record("a closed port answered")
        } catch let error as TalosError {
            #expect(error.isTransient, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(15), "no call waits past its deadline")
    }
}
