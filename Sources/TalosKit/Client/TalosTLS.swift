import Crypto
import Foundation
import NIOCore
import NIOSSL
import X509

/// TLS for the Talos API. Talos certificates are Ed25519, which BoringSSL only negotiates when the
/// configuration lists ed25519 among both the signing and the verify signature algorithms; the
/// transport's ready-made TLS options do not expose those, so we build the handler ourselves.
public enum TalosTLS {
    /// How a connection authenticates.
    public enum Mode: Sendable {
        /// A node in maintenance mode: it must present Talos' maintenance identity (and this SPKI
        /// SHA-256, base64, when pinned) and must not ask for a client certificate; its self-signed
        /// chain is not verified, there is nothing to verify it against.
        case maintenance(spkiPin: String?)
        /// A configured node: our client certificate, the server's chain verified against the OS CA.
        case configured(caPEM: String, certificatePEM: String, keyPEM: String)
        /// A node not yet identified (a probe): it goes on only if it presents Talos' maintenance
        /// identity without asking for a client certificate, or, with credentials, a certificate
        /// from our OS CA; the connection then stays with that identity.
        case identify(credentials: (ca: String, certificate: String, key: String)?)
    }

    static let algorithms: [SignatureAlgorithm] = [
        .ed25519, .ecdsaSecp256R1Sha256, .ecdsaSecp384R1Sha384, .rsaPssRsaeSha256, .rsaPssRsaeSha384, .rsaPkcs1Sha256, .rsaPkcs1Sha384,
    ]

    /// What both ends of a Talos API connection need: TLS >= 1.2, ALPN h2, Ed25519 signatures.
    public static func applyTalosDefaults(to configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        configuration.signingSignatureAlgorithms = algorithms
        configuration.verifySignatureAlgorithms = algorithms
    }

    /// A Talos private key (`ED25519 PRIVATE KEY`, PKCS#8 inside) as BoringSSL reads it: it only
    /// takes Ed25519 keys from PKCS#8 `PRIVATE KEY`, the same DER under the standard label.
    public static func privateKey(pem: String) throws -> NIOSSLPrivateKey {
        let pkcs8 = pem.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY")
        return try NIOSSLPrivateKey(bytes: Array(pkcs8.utf8), format: .pem)
    }

    /// What a connection in `mode` accepts, checked inside each handshake; nil when BoringSSL's
    /// own chain verification against the OS CA decides (configured mode).
    static func acceptance(_ mode: Mode) throws -> TalosHandshake.Acceptance? {
        switch mode {
        case let .maintenance(pin): return .maintenance(spkiPin: pin)
        case let .identify(credentials): return .maintenanceOrOurs(ca: try credentials.map { try Certificate(pemEncoded: $0.ca) })
        case .configured: return nil
        }
    }

    public static func context(_ mode: Mode, handshake: TalosHandshake) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        applyTalosDefaults(to: &configuration)
        switch mode {
        case .maintenance, .identify:
            // Verification stays on so NIOSSL calls our callback, which replaces chain checking with
            // the identity check. The client key only signs for a node of ours, so a request for a
            // client certificate is always seen (and refused) rather than answered with nothing.
            var signer: SigningKey?
            var chain = try throwawayCertificate()
            if case let .identify(credentials?) = mode {
                signer = try SigningKey(pem: credentials.key)
                if case .rsa = signer { throw TalosError.rejected("an RSA talosconfig key cannot identify nodes; Talos issues Ed25519 keys (provision talosconfig makes one)") }
                chain = try NIOSSLCertificate.fromPEMBytes(Array(credentials.certificate.utf8))
            }
            configuration.certificateVerification = .noHostnameVerification
            // No trust roots: the callback judges the chain. The system's bundle would be read and
            // parsed for every connection (a quarter of the CPU of `up` on 3 + 200 nodes).
            configuration.trustRoots = .certificates([])
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(NIOSSLPrivateKey(customPrivateKey: HandshakeGatedKey(handshake: handshake, signer: signer)))
        case let .configured(ca, certificate, key):
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try privateKey(pem: key))
            // Node certificates name the node's addresses, and we dial addresses, not names; trust is
            // the cluster's own CA.
            configuration.certificateVerification = .noHostnameVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// A handler for one connection, placed first in the pipeline.
    static func handler(_ context: NIOSSLContext, mode: Mode, handshake: TalosHandshake) throws -> NIOSSLClientHandler {
        if case .configured = mode { return try NIOSSLClientHandler(context: context, serverHostname: nil) }
        return try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
            promise.succeed(handshake.verify(certificates))
        }
    }

    /// A self-signed certificate that is never used to sign: it only makes BoringSSL consult our
    /// key when a server asks for a client certificate. Made once per process.
    static func throwawayCertificate() throws -> [NIOSSLCertificate] {
        guard let throwaway else { throw TalosError.other(code: "tls", message: "could not make a throwaway client certificate") }
        return throwaway
    }

    private static let throwaway: [NIOSSLCertificate]? = {
        let key = SigningKey.ed25519(.init())
        guard let certificate = try? CertificateFactory.serverLeaf(commonName: "provision-client-withheld", ipAddresses: [], dnsNames: [],
                                                                   issuer: nil, issuerKey: key, leafKey: key),
              let pem = try? CertificateFactory.pem(certificate) else { return nil }
        return try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
    }()
}
