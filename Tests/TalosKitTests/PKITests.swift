import Foundation
import Testing
import TestSupport
import X509
@testable import ProvisionCore
@testable import TalosKit

/// The real `openssl` CLI checks what we generate: key types, chains, extensions, validity, roles.
@Suite(.serialized) struct PKITests {
    static let bundle = Result { try SecretsBundle.generate() }

    func decoded(_ value: String) throws -> String { try SecretsBundle.decode(value) }

    func x509Text(_ pem: String, in dir: String, name: String) async throws -> String {
        try Peer.write(pem, "\(dir)/\(name).pem")
        let result = try await Peer.run(["openssl", "x509", "-in", "\(dir)/\(name).pem", "-noout", "-text"])
        #expect(result.status == 0, "openssl could not read \(name): \(result.stderr)")
        return result.stdout
    }

    @Test(arguments: [("os", "ED25519", "O = talos"), ("etcd", "prime256v1", "O = etcd"), ("k8s", "prime256v1", "O = kubernetes"),
                      ("k8saggregator", "prime256v1", "")])
    func certificateAuthoritiesAreShapedLikeTalosctls(_ name: String, _ keyType: String, _ subject: String) async throws {
        let bundle = try Self.bundle.get()
        let pair = ["os": bundle.os, "etcd": bundle.etcd, "k8s": bundle.k8s, "k8saggregator": bundle.k8sAggregator][name]!
        let dir = temporaryDirectory()
        let text = try await x509Text(try decoded(pair.crt), in: dir, name: name)
        #expect(text.contains(keyType))
        #expect(text.contains("CA:TRUE"))
        #expect(text.contains("Certificate Sign"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("Subject Key Identifier"))
        // openssl prints an empty subject (talosctl's aggregator CA) as a bare "Subject: " line.
        let subjectLine = text.split(separator: "\n").first { $0.contains("Subject: ") }.map { String($0.split(separator: ":", maxSplits: 1)[1]) }
        #expect(subjectLine == " " + subject, "subject of \(name)")
        let verify = try await Peer.run(["openssl", "verify", "-CAfile", "\(dir)/\(name).pem", "\(dir)/\(name).pem"])
        #expect(verify.stdout.contains(": OK"), "\(verify.stdout)\(verify.stderr)")
        let dates = try await Peer.run(["openssl", "x509", "-in", "\(dir)/\(name).pem", "-noout", "-startdate", "-enddate"])
        let years = dates.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").dropLast().last.flatMap { Int($0) } }
        #expect(years.count == 2 && years[1] - years[0] == 10, "\(dates.stdout)")
        // The key matches the certificate (openssl reads the key; Talos' ED25519 label is PKCS#8 inside).
        let keyPEM = try decoded(pair.key).replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY")
        try Peer.write(keyPEM, "\(dir)/\(name).key")
        let fromKey = try await Peer.run(["openssl", "pkey", "-in", "\(dir)/\(name).key", "-pubout"])
        let fromCert = try await Peer.run(["openssl", "x509", "-in", "\(dir)/\(name).pem", "-noout", "-pubkey"])
        #expect(fromKey.status == 0 && fromKey.stdout == fromCert.stdout)
    }

    @Test func keyBlocksUseTalosLabels() throws {
        let bundle = try Self.bundle.get()
        #expect(try decoded(bundle.os.key).hasPrefix("-----BEGIN ED25519 PRIVATE KEY-----"))
        #expect(try decoded(bundle.etcd.key).hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        #expect(try decoded(bundle.k8sServiceAccountKey).hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
    }

    @Test func serviceAccountKeyIsRSA4096() async throws {
        let dir = temporaryDirectory()
        try Peer.write(try decoded(try Self.bundle.get().k8sServiceAccountKey), "\(dir)/sa.key")
        let result = try await Peer.run(["openssl", "rsa", "-in", "\(dir)/sa.key", "-check", "-noout", "-text"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Private-Key: (4096 bit"))
        #expect(result.stdout.contains("RSA key ok"))
        let ec = try decoded(try Self.bundle.get().etcd.key)
        try Peer.write(ec, "\(dir)/etcd.key")
        let check = try await Peer.run(["openssl", "ec", "-in", "\(dir)/etcd.key", "-check", "-noout"])
        #expect(check.stderr.contains("EC Key valid") || check.stdout.contains("EC Key valid"))
    }

    @Test func tokensAndIDsHaveTalosctlsFormats() throws {
        let bundle = try Self.bundle.get()
        #expect(SecretsBundle.isToken(bundle.bootstrapToken))
        #expect(SecretsBundle.isToken(bundle.trustdToken))
        #expect(Data(base64Encoded: bundle.clusterSecret)?.count == 32)
        #expect(bundle.clusterID.count == 44 && !bundle.clusterID.contains("+") && !bundle.clusterID.contains("/"))
        #expect(Data(base64Encoded: bundle.secretboxEncryptionSecret)?.count == 32)
    }

    @Test func clientCertificateIsAcceptedOnlyAsAClient() async throws {
        let bundle = try Self.bundle.get()
        let (ca, caKey) = try bundle.osAuthority()
        let leaf = SigningKey.ed25519(.init())
        let cert = try CertificateFactory.talosClient(roles: ["os:operator"], caCertificate: ca, caKey: caKey, leafKey: leaf)
        let dir = temporaryDirectory()
        try Peer.write(try decoded(bundle.os.crt), "\(dir)/ca.pem")
        let text = try await x509Text(try CertificateFactory.pem(cert), in: dir, name: "client")
        #expect(text.contains("ED25519"))
        #expect(text.contains("Subject: O = os:operator"))
        #expect(text.contains("CA:FALSE"))
        #expect(text.contains("TLS Web Client Authentication") && !text.contains("TLS Web Server Authentication"))
        let verify = try await Peer.run(["openssl", "verify", "-CAfile", "\(dir)/ca.pem", "-purpose", "sslclient", "\(dir)/client.pem"])
        #expect(verify.stdout.contains("client.pem: OK"), "\(verify.stdout)\(verify.stderr)")
        let asServer = try await Peer.run(["openssl", "verify", "-CAfile", "\(dir)/ca.pem", "-purpose", "sslserver", "\(dir)/client.pem"])
        #expect(!asServer.stdout.contains(": OK"))
        #expect(cert.notValidBefore < Date().addingTimeInterval(-120), "back-dated for clock skew")
    }
}
