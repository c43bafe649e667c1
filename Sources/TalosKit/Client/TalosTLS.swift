import Crypto
import Foundation
import NIOCore
import NIOSSL

/// TLS for the Talos API. Talos certificates are Ed25519, which BoringSSL only negotiates when the
/// configuration lists ed25519 among both the signing and the verify signature algorithms; the
/// transport's ready-made TLS options do not expose those, so we build the handler ourselves.
public enum TalosTLS {
    /// How a connection authenticates.
    public enum Mode: Sendable {
        /// A node in maintenance mode: no client certificate, the server's self-signed certificate is
        /// not chain-verified; optionally its SPKI SHA-256 (base64) must match a pin.
        case maintenance(spkiPin: String?)
        /// A configured node: our client certificate, the server's chain verified against the OS CA.
        case configured(caPEM: String, certificatePEM: String, keyPEM: String)
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

    public static func context(_ mode: Mode) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        applyTalosDefaults(to: &configuration)
        switch mode {
        case let .maintenance(pin):
            // With a pin, verification stays on so NIOSSL calls our callback, which then replaces chain
            // checking (the maintenance certificate is self-signed) with the SPKI comparison.
            configuration.certificateVerification = pin == nil ? .none : .noHostnameVerification
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
    static func handler(_ context: NIOSSLContext, mode: Mode) throws -> NIOSSLClientHandler {
        if case let .maintenance(pin?) = mode {
            return try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
                let matches = (try? certificates.first?.extractPublicKey().toSPKIBytes()).map { spki in
                    Data(SHA256.hash(data: spki)).base64EncodedString() == pin
                } ?? false
                promise.succeed(matches ? .certificateVerified : .failed)
            }
        }
        return try NIOSSLClientHandler(context: context, serverHostname: nil)
    }
}
