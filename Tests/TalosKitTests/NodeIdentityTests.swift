import Foundation
import Testing
import TestSupport
@testable import ProvisionCore
@testable import TalosKit

/// A node is identified by what one TLS handshake shows, and nothing at all is sent to a node that
/// is neither Talos in maintenance nor ours. The peers are independent (Python's TLS stack and the
/// talos-linux-api bindings) and log every RPC they receive: "nothing sent" is their empty log.
@Suite(.serialized) struct NodeIdentityTests {
    /// A cluster's credentials (what a run mints) and its OS CA as PEM files for a peer.
    func cluster() throws -> (credentials: (ca: String, certificate: String, key: String), ca: (crt: String, key: String)) {
        let bundle = try SecretsBundle.generate()
        let dir = temporaryDirectory()
        try Peer.write(try SecretsBundle.decode(bundle.os.crt), dir + "/ca.pem")
        try Peer.write(try SecretsBundle.decode(bundle.os.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY"), dir + "/ca.key")
        return (try TalosConfig.credentials(bundle: bundle, roles: ["os:admin"], validity: 3600), (dir + "/ca.pem", dir + "/ca.key"))
    }

    func probe(_ peer: PythonPeer, _ credentials: (ca: String, certificate: String, key: String)?) async -> TalosProbe.Result {
        var probe = TalosProbe(host: "127.0.0.1", port: peer.port, credentials: credentials)
        probe.timeout = .seconds(5)
        return await probe.run()
    }

    @Test func anotherClustersNodeThatToleratesNoClientCertificateGetsNothing() async throws {
        let ours = try cluster(), theirs = try cluster()
        let peer = try await PythonPeer(identity: .issued(by: theirs.ca), clientCertificates: .optional)
        let verified = await probe(peer, ours.credentials)
        let anonymous = await probe(peer, nil)
        var maintenance = try TalosClient(host: "127.0.0.1", port: peer.port, mode: .maintenance(spkiPin: nil))
        maintenance.timeout = .seconds(3)
        let applied = try? await maintenance.applyConfiguration("version: v1alpha1\n")
        let calls = peer.calls
        await peer.stop()
        #expect(verified.mode == .wrongCluster, "\(verified.mode) \(verified.reason ?? "")")
        #expect(verified.reason?.contains("nothing was sent") == true, "\(verified.reason ?? "")")
        #expect(anonymous.mode == .configuredUnverified, "without our CA it is at least not maintenance: \(anonymous.mode)")
        #expect(applied == nil, "a maintenance-mode client refuses a node that is not in maintenance")
        #expect(calls.isEmpty, "the peer must receive no RPC at all: \(calls)")
    }

    @Test func selfSignedCertificateForAnotherNameIsNotMaintenance() async throws {
        let ours = try cluster()
        let peer = try await PythonPeer(identity: .selfSigned(commonName: "talos-proxy.example"), clientCertificates: .notRequested)
        let anonymous = await probe(peer, nil)
        let verified = await probe(peer, ours.credentials)
        let calls = peer.calls
        await peer.stop()
        #expect(anonymous.mode == .configuredUnverified, "\(anonymous.mode) \(anonymous.reason ?? "")")
        #expect(anonymous.reason?.contains("talos-proxy.example") == true, "the reason names what it presented: \(anonymous.reason ?? "")")
        #expect(verified.mode == .wrongCluster, "\(verified.mode)")
        #expect(calls.isEmpty, "\(calls)")
    }

    @Test func maintenanceNameThatAsksForAClientCertificateIsNotMaintenance() async throws {
        let ours = try cluster()
        let peer = try await PythonPeer(identity: .maintenance, clientCertificates: .optional)
        let anonymous = await probe(peer, nil)
        let verified = await probe(peer, ours.credentials)
        let calls = peer.calls
        await peer.stop()
        #expect(anonymous.mode == .wrongCluster, "\(anonymous.mode) \(anonymous.reason ?? "")")
        #expect(anonymous.reason?.contains("asks for a client certificate") == true, "\(anonymous.reason ?? "")")
        #expect(verified.mode == .wrongCluster, "\(verified.mode)")
        #expect(calls.isEmpty, "\(calls)")
    }

    @Test func maintenanceNodeIsIdentifiedByItsFingerprintAndTheConnectionStaysWithIt() async throws {
        let ours = try cluster()
        let peer = try await PythonPeer()
        let result = await probe(peer, ours.credentials)
        #expect(result.mode == .maintenance, "\(result.mode) \(result.reason ?? "")")
        #expect(result.identity == .maintenance(spki: peer.spkiPin), "the fingerprint is talosctl's --cert-fingerprint (openssl agrees)")
        let connection = try #require(result.connection)
        let applied = try? await TalosClient(connection: connection).applyConfiguration("version: v1alpha1\n")
        await peer.stop()
        #expect(applied?.modeDetails == "applied", "the identified connection carries the config")

        // The same address, another machine (a reboot makes a new maintenance key): that connection refuses it.
        let rebooted = try await PythonPeer(identity: .maintenance, clientCertificates: .notRequested, port: peer.port)
        var client = TalosClient(connection: connection)
        client.timeout = .seconds(3)
        let resent = try? await client.applyConfiguration("version: v1alpha1\n")
        let calls = rebooted.calls
        await rebooted.stop()
        #expect(resent == nil)
        #expect(calls.isEmpty, "a node whose identity changed is identified again before anything is sent: \(calls)")
        #expect(connection.handshake.facts.refusal?.contains("identify it again") == true, "\(connection.handshake.facts)")
    }

    @Test func ourConfiguredNodeIsIdentifiedInTheSameHandshake() async throws {
        let ours = try cluster()
        let peer = try await PythonPeer(authority: ours.ca)
        let result = await probe(peer, ours.credentials)
        let calls = peer.calls
        await peer.stop()
        #expect(result.mode == .configured, "\(result.mode) \(result.reason ?? "")")
        #expect(result.identity == .ours(commonName: "cp1"))
        #expect(result.etcdMembers?.count == 2)
        #expect(calls.first?["method"] as? String == "Version", "one handshake, then the calls: \(calls)")
    }
}
