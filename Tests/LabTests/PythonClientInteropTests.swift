import Foundation
import Lab
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// The talos-linux-api Python bindings (grpclib + Python's TLS) as an independent client of our
/// simulated nodes: if they accept it, so should talosctl.
@Suite struct PythonClientInteropTests {
    static let script = "\(repositoryRoot)/Tests/Interop/talos_client.py"

    func run(_ lab: LabFixture, _ node: String, credentials: (ca: String, cert: String, key: String)? = nil, _ calls: [String]) async throws -> [String: [String: Any]] {
        var arguments = ["python3", Self.script, "--host", lab.node(node).spec.address]
        if let credentials { arguments += ["--ca", credentials.ca, "--cert", credentials.cert, "--key", credentials.key] }
        let result = try await Subprocess.run(arguments + calls)
        guard result.status == 0 else { throw PeerError("talos_client.py failed (\(result.status)): \(result.stderr)") }
        var replies: [String: [String: Any]] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let call = object["call"] as? String else { continue }
            replies[call] = object
        }
        return replies
    }

    /// PEM files for Python, private to this test (0600).
    func files(_ ca: String, _ cert: String, _ key: String) throws -> (ca: String, cert: String, key: String) {
        let dir = temporaryDirectory()
        try PrivateFile.write(Array(ca.utf8), to: "\(dir)/ca.pem")
        try PrivateFile.write(Array(cert.utf8), to: "\(dir)/cert.pem")
        try PrivateFile.write(Array(key.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY").utf8), to: "\(dir)/key.pem")
        return ("\(dir)/ca.pem", "\(dir)/cert.pem", "\(dir)/key.pem")
    }

    @Test func maintenanceModeWithoutAClientCertificate() async throws {
        let lab = try LabFixture(nodes: ["cp1"], platform: "metal", timeScale: 0.01)
        await lab.node("cp1").powerOn()
        _ = try await eventually { try await lab.client("cp1", .maintenance(spkiPin: nil)).version() }
        let dir = temporaryDirectory()
        try PrivateFile.write(Array(try lab.config("cp1").utf8), to: "\(dir)/cp1.yaml")
        let replies = try await run(lab, "cp1", ["version", "disks", "reset", "apply:\(dir)/cp1.yaml"])
        #expect(replies["version"]?["tag"] as? String == "v1.13.0")
        #expect(replies["version"]?["rbac"] as? Bool == false)
        let disks = replies["disks"]?["disks"] as? [[Any]]
        #expect(disks?.map { $0[0] as? String } == ["/dev/vda", "/dev/sdb"])
        #expect(replies["reset"]?["status"] as? String == "PERMISSION_DENIED", "maintenance clients are os:reader")
        #expect(replies["reset"]?["message"] as? String == "not authorized")
        #expect(replies["apply:\(dir)/cp1.yaml"]?["ok"] as? Bool == true, "\(replies)")
        // NO_REBOOT: maintenance resolves AUTO so (talos v1.13.9 v1alpha1_server.go); the install follows on its own.
        #expect(replies["apply:\(dir)/cp1.yaml"]?["mode"] as? Int == 2, "\(replies)")
    }

    /// MachineService/Events streams each stage change as it happens (what provision's waits read
    /// instead of polling): the Python client and ours both see maintenance -> installing as a
    /// config is applied, and the stream ends when the node goes down to reboot.
    @Test(.timeLimit(.minutes(2))) func eventsStreamEachStageAsItHappens() async throws {
        let lab = try LabFixture(nodes: ["cp1"], platform: "metal", timeScale: 0.05)
        await lab.node("cp1").powerOn()
        let maintenance = try lab.client("cp1", .maintenance(spkiPin: nil))
        _ = try await eventually { try await maintenance.version() }
        async let watched = run(lab, "cp1", ["events:10"])
        async let ours = maintenance.stageChange(from: .maintenance, within: .seconds(30))
        // The config goes in once the Python client's Events call has reached the node.
        _ = try await eventually(timeout: .seconds(60)) { () async throws -> Bool in
            guard await lab.node("cp1").calls.filter({ $0.method == "Events" }).count >= 2 else { throw PeerError("not subscribed yet") }
            return true
        }
        let applied = Date()
        _ = try await maintenance.applyConfiguration(try lab.config("cp1"))
        let seen = try await ours
        #expect(seen == .installing, "our client wakes on the change: \(String(describing: seen))")
        #expect(Date().timeIntervalSince(applied) < 10, "as it happens, well inside the 30 s window it waited with")
        let reply = try await watched["events:10"]
        let stages = reply?["stages"] as? [String] ?? []
        #expect(stages.starts(with: ["MAINTENANCE", "INSTALLING", "REBOOTING"]), "\(String(describing: reply))")
    }

    /// The stream as Talos sends it, read by the bindings generated from Talos' protos: a hello
    /// (empty data, a fresh id) first, then what the node kept since boot, of every kind, each id
    /// later than the one before.
    @Test func eventsStartWithAHelloThenEveryKindKept() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let admin = try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"])
        let replies = try await run(lab, "cp1", credentials: try files(admin.ca, admin.certificate, admin.key), ["events-raw:12"])
        let events = replies["events-raw:12"]?["events"] as? [[String: Any]] ?? []
        #expect(events.count == 12, "\(String(describing: replies))")
        #expect(events.first?["type"] as? String == "" && events.first?["bytes"] as? Int == 0, "the hello: \(events.first ?? [:])")
        let kinds = Set(events.dropFirst().compactMap { ($0["type"] as? String)?.replacingOccurrences(of: "talos/runtime/machine.", with: "") })
        #expect(kinds.isSuperset(of: ["MachineStatusEvent", "SequenceEvent", "ServiceStateEvent", "AddressEvent"]), "\(kinds)")
        let ids = events.dropFirst().compactMap { $0["id"] as? String }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count, "\(ids)")
    }

    @Test func configuredModeChecksCertificatesAndRoles() async throws {
        let lab = try LabFixture(nodes: ["cp1"])
        try await lab.configure(["cp1"])
        let admin = try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:admin"])
        let adminFiles = try files(admin.ca, admin.certificate, admin.key)
        let replies = try await run(lab, "cp1", credentials: adminFiles, ["version", "hostname", "bootstrap", "kubeconfig"])
        #expect(replies["version"]?["rbac"] as? Bool == true)
        #expect(replies["hostname"]?["hostname"] as? String == "cp1")
        #expect(replies["bootstrap"]?["ok"] as? Bool == true, "\(replies)")
        #expect(replies["kubeconfig"]?["name"] as? String == "kubeconfig", "Python's tarfile reads Talos' unterminated archive")
        #expect((replies["kubeconfig"]?["kubeconfig"] as? String)?.contains("admin@demo") == true)

        // A reader may look but not reset.
        let reader = try TalosConfig.credentials(bundle: lab.bundle, roles: ["os:reader"])
        let readerReplies = try await run(lab, "cp1", credentials: try files(reader.ca, reader.certificate, reader.key), ["version", "reset"])
        #expect(readerReplies["version"]?["ok"] as? Bool == true)
        #expect(readerReplies["reset"]?["status"] as? String == "PERMISSION_DENIED")
        #expect(readerReplies["reset"]?["message"] as? String == "not authorized")

        // A certificate from the right CA with EKU serverAuth+clientAuth is refused at the handshake.
        let bad = try await serverAndClientAuthCertificate(lab.bundle)
        let badReplies = try await run(lab, "cp1", credentials: bad, ["version"])
        #expect(badReplies["version"]?["ok"] as? Bool == false)
        #expect(badReplies["version"]?["status"] == nil, "refused by TLS, not by an RPC: \(badReplies)")

        // No client certificate at all: refused too.
        let anonymous = try await run(lab, "cp1", ["version"])
        #expect(anonymous["version"]?["ok"] as? Bool == false)
        let calls = await lab.node("cp1").calls
        #expect(calls.contains { $0.method == "Reset" && $0.roles == ["os:reader"] })
        #expect(!calls.contains { $0.roles.isEmpty }, "every call that got through had roles")
    }

    /// Minted with the openssl CLI from the cluster's OS CA: correct issuer, wrong key usage.
    func serverAndClientAuthCertificate(_ bundle: SecretsBundle) async throws -> (ca: String, cert: String, key: String) {
        let dir = temporaryDirectory()
        let caCert = try SecretsBundle.decode(bundle.os.crt)
        let caKey = try SecretsBundle.decode(bundle.os.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY")
        try PrivateFile.write(Array(caCert.utf8), to: "\(dir)/ca.pem")
        try PrivateFile.write(Array(caKey.utf8), to: "\(dir)/ca-key.pem")
        try "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n".write(toFile: "\(dir)/ext.cnf", atomically: true, encoding: .utf8)
        for command in [
            ["openssl", "genpkey", "-algorithm", "ed25519", "-out", "\(dir)/key.pem"],
            ["openssl", "req", "-new", "-key", "\(dir)/key.pem", "-subj", "/O=os:admin", "-out", "\(dir)/req.csr"],
            ["openssl", "x509", "-req", "-in", "\(dir)/req.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca-key.pem", "-CAcreateserial",
             "-extfile", "\(dir)/ext.cnf", "-days", "1", "-out", "\(dir)/cert.pem"],
        ] {
            let result = try await Subprocess.run(command)
            guard result.status == 0 else { throw PeerError("\(command[1]) failed: \(result.stderr)") }
        }
        return ("\(dir)/ca.pem", "\(dir)/cert.pem", "\(dir)/key.pem")
    }
}
