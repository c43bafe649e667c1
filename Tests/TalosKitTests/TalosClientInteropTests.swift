import Crypto
import Foundation
import Testing
import TestSupport
@testable import ProvisionCore
@testable import TalosKit

/// Our Talos client against an independent peer: talos-linux-api's MachineServiceBase on grpclib,
/// with Python's TLS stack and an Ed25519 certificate like a node in maintenance mode.
@Suite(.serialized) struct TalosClientInteropTests {
    @Test func versionInMaintenanceModeOverEd25519TLS() async throws {
        let peer = try await PythonPeer()
        let client = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        let version = try? await client.version()
        await peer.stop()
        #expect(version?.version.tag == "v1.13.2")
        #expect(version?.platform.name == "metal")
    }

    @Test func maintenanceCertificatePinIsEnforced() async throws {
        let peer = try await PythonPeer()
        let pinned = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: peer.spkiPin))
        let good = try? await pinned.version()
        var wrong = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: Data(SHA256.hash(data: [1, 2, 3])).base64EncodedString()))
        wrong.timeout = .seconds(3)
        let bad = try? await wrong.version()
        await peer.stop()
        #expect(good?.version.tag == "v1.13.2")
        #expect(bad == nil, "a pin mismatch must fail the handshake")
    }

    @Test func configuredModeUsesEd25519ClientCertificates() async throws {
        let bundle = try SecretsBundle.generate()
        let dir = temporaryDirectory()
        try Peer.write(try SecretsBundle.decode(bundle.os.crt), dir + "/ca.pem")
        try Peer.write(try SecretsBundle.decode(bundle.os.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY"), dir + "/ca.key")
        let peer = try await PythonPeer(authority: (dir + "/ca.pem", dir + "/ca.key"))
        let (ca, caKey) = try bundle.osAuthority()
        let leaf = SigningKey.ed25519(.init())
        let certificate = try CertificateFactory.talosClient(roles: ["os:admin"], caCertificate: ca, caKey: caKey, leafKey: leaf)
        let mode = TalosTLS.Mode.configured(caPEM: try SecretsBundle.decode(bundle.os.crt), certificatePEM: try CertificateFactory.pem(certificate), keyPEM: leaf.pem)
        let version = try? await TalosClient(host: "127.0.0.1", port: peer.port, mode: mode).version()
        // Without a client certificate the configured node refuses the handshake.
        var anonymous = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        anonymous.timeout = .seconds(3)
        let refused = try? await anonymous.version()
        await peer.stop()
        #expect(version?.version.tag == "v1.13.2", "mutual Ed25519 TLS with the peer")
        #expect(refused == nil)
    }

    @Test func callsCarryWhatTalosExpects() async throws {
        let peer = try await PythonPeer()
        let client = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
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
        var client = try TalosClient(host: "127.0.0.1", port: 1, mode: .maintenance(spkiPin: nil))
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
