import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import TalosKit
import X509

/// The lab API server's TLS, as kube-apiserver's: a serving certificate from the cluster's
/// Kubernetes CA for the VIP, loopback and the in-cluster names; client certificates required and
/// checked against the same CA; CN is the user and O the groups.
struct KubeAPITLS: Sendable {
    let context: NIOSSLContext
    let ca: Certificate

    init(caPEM: String, caKeyPEM: String, addresses: [String]) throws {
        ca = try Certificate(pemEncoded: caPEM)
        let caKey = try SigningKey(pem: caKeyPEM)
        let leafKey = SigningKey.p256(.init())
        let leaf = try CertificateFactory.serverLeaf(
            commonName: "kube-apiserver", ipAddresses: addresses + ["127.0.0.1"],
            dnsNames: ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"],
            issuer: ca, issuerKey: caKey, leafKey: leafKey)
        let certificate = try NIOSSLCertificate(bytes: Array(try leaf.serializeAsPEM().pemString.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(leafKey.pem.utf8), format: .pem)))
        configuration.certificateVerification = .noHostnameVerification
        configuration.applicationProtocols = ["http/1.1"]
        context = try NIOSSLContext(configuration: configuration)
    }

    /// Adds the handler to a new connection; the returned box holds the client once verified.
    func secure(_ channel: any Channel) throws -> NIOLockedValueBox<ClientIdentity?> {
        let identity = NIOLockedValueBox<ClientIdentity?>(nil)
        let ca = self.ca
        let handler = NIOSSLServerHandler(context: context) { certificates, promise in
            guard let client = Self.verify(certificates, ca: ca) else { promise.succeed(.failed); return }
            identity.withLockedValue { $0 = client }
            promise.succeed(.certificateVerified)
        }
        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        return identity
    }

    static func verify(_ certificates: [NIOSSLCertificate], ca: Certificate) -> ClientIdentity? {
        guard let first = certificates.first, let leaf = try? Certificate(derEncoded: first.toDERBytes()) else { return nil }
        let now = Date()
        guard leaf.issuer == ca.subject, ca.publicKey.isValidSignature(leaf.signature, for: leaf),
              leaf.notValidBefore <= now, now <= leaf.notValidAfter else { return nil }
        var user = "", groups: [String] = []
        for rdn in leaf.subject {
            for attribute in rdn {
                let value = "\(attribute.value)"
                if attribute.type == .RDNAttributeType.commonName { user = value }
                if attribute.type == .RDNAttributeType.organizationName { groups.append(value) }
            }
        }
        return ClientIdentity(user: user, groups: groups)
    }
}
