import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SwiftASN1
import TalosKit
import X509

/// The TLS a simulated node presents, chosen per accepted connection as Talos' apid does:
/// maintenance serves a per-boot self-signed Ed25519 certificate (CN maintenance-service.talos.dev)
/// and asks for no client certificate; configured serves a certificate from the machine's OS CA,
/// requires a client certificate from that CA, and refuses any non-CA certificate in the chain whose
/// extended key usage is not exactly clientAuth.
final class NodeTLS: Sendable {
    enum Mode: Sendable {
        case maintenance
        case configured
    }

    private struct State {
        var context: NIOSSLContext?
        var mode: Mode = .maintenance
        var clientCA: Certificate?
        var accepted = 0
        var flaps = false
    }

    private let state = NIOLockedValueBox(State())

    var mode: Mode { state.withLockedValue { $0.mode } }

    func setFlaps(_ flaps: Bool) { state.withLockedValue { $0.flaps = flaps } }

    /// A fresh maintenance identity: new CA and key on every boot, as Talos makes one in memory.
    func useMaintenance(addresses: [String]) throws {
        let caKey = SigningKey.ed25519(.init())
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: caKey.certificateKey.publicKey,
            notValidBefore: Date() - 60, notValidAfter: Date() + 86400, issuer: DistinguishedName(), subject: DistinguishedName(),
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            },
            issuerPrivateKey: caKey.certificateKey)
        let leafKey = SigningKey.ed25519(.init())
        let leaf = try CertificateFactory.serverLeaf(commonName: "maintenance-service.talos.dev", ipAddresses: addresses + ["127.0.0.1"],
                                                     dnsNames: [], issuer: ca, issuerKey: caKey, leafKey: leafKey)
        let context = try Self.serverContext(leaf: leaf, key: leafKey, requireClientCertificate: false)
        state.withLockedValue { $0 = State(context: context, mode: .maintenance, clientCA: nil, accepted: $0.accepted, flaps: $0.flaps) }
    }

    /// The configured identity: a server certificate issued from the machine's OS CA.
    func useConfigured(osCA: (certificate: String, key: String), hostname: String, addresses: [String], sans: [String]) throws {
        let ca = try Certificate(pemEncoded: osCA.certificate)
        let caKey = try SigningKey(pem: osCA.key)
        let leafKey = SigningKey.ed25519(.init())
        let ips = sans.filter { $0.split(separator: ".").count == 4 && $0.split(separator: ".").allSatisfy { UInt8($0) != nil } }
        let names = [hostname] + sans.filter { !ips.contains($0) }
        let leaf = try CertificateFactory.serverLeaf(commonName: hostname, ipAddresses: addresses + ips + ["127.0.0.1"],
                                                     dnsNames: names, issuer: ca, issuerKey: caKey, leafKey: leafKey)
        let context = try Self.serverContext(leaf: leaf, key: leafKey, requireClientCertificate: true)
        state.withLockedValue { $0 = State(context: context, mode: .configured, clientCA: ca, accepted: $0.accepted, flaps: $0.flaps) }
    }

    /// Adds the TLS handler to a newly accepted connection (first in the pipeline), or closes it
    /// when the node's API is flapping.
    func configure(_ channel: any Channel) -> EventLoopFuture<Void> {
        let (context, clientCA, drop): (NIOSSLContext?, Certificate?, Bool) = state.withLockedValue { state in
            state.accepted += 1
            return (state.context, state.clientCA, state.flaps && state.accepted % 2 == 1)
        }
        guard let context, !drop else {
            return channel.close().flatMapThrowing { throw ChannelError.ioOnClosedChannel }
        }
        return channel.eventLoop.makeCompletedFuture {
            let handler: NIOSSLServerHandler
            if let clientCA {
                handler = NIOSSLServerHandler(context: context) { certificates, promise in
                    promise.succeed(Self.verifyClient(certificates, ca: clientCA))
                }
            } else {
                handler = NIOSSLServerHandler(context: context)
            }
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }
    }

    static func serverContext(leaf: Certificate, key: SigningKey, requireClientCertificate: Bool) throws -> NIOSSLContext {
        let certificate = try NIOSSLCertificate(bytes: Array(try leaf.serializeAsPEM().pemString.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(try TalosTLS.privateKey(pem: key.pem)))
        TalosTLS.applyTalosDefaults(to: &configuration)
        // With a client CA the handshake demands a certificate (BoringSSL fails it when none comes);
        // our callback then does the chain and key-usage checks.
        configuration.certificateVerification = requireClientCertificate ? .noHostnameVerification : .none
        return try NIOSSLContext(configuration: configuration)
    }

    /// Talos' client check: the leaf is signed by the OS CA and valid now, and every non-CA
    /// certificate presented has extended key usage exactly [clientAuth].
    static func verifyClient(_ certificates: [NIOSSLCertificate], ca: Certificate) -> NIOSSLVerificationResult {
        guard let first = certificates.first, let leaf = try? Certificate(derEncoded: first.toDERBytes()) else { return .failed }
        guard TalosPeerIdentity.isIssued(leaf, by: ca) else { return .failed }
        for der in certificates {
            guard let certificate = try? Certificate(derEncoded: der.toDERBytes()) else { return .failed }
            let isCA = (try? certificate.extensions.basicConstraints).map { constraints -> Bool in
                if case .isCertificateAuthority = constraints { return true }
                return false
            } ?? false
            if isCA { continue }
            guard let usage = try? certificate.extensions.extendedKeyUsage, Array(usage) == [.clientAuth] else { return .failed }
        }
        return .certificateVerified
    }
}
