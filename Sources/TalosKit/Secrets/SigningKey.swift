import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import X509

/// A private key of one of the kinds in a Talos secrets bundle, with the PEM form Talos writes:
/// `ED25519 PRIVATE KEY` (PKCS#8 body), `EC PRIVATE KEY` (SEC1), `RSA PRIVATE KEY` (PKCS#1).
/// On import `PRIVATE KEY` (PKCS#8) is accepted too, as Talos does.
public enum SigningKey: @unchecked Sendable {
    // @unchecked: _RSA.Signing.PrivateKey is an immutable wrapper over a BoringSSL key that is not
    // annotated Sendable; the other cases are Sendable value types.
    case ed25519(Curve25519.Signing.PrivateKey)
    case p256(P256.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey)

    /// PKCS#8 prefix for an Ed25519 seed (RFC 8410).
    static let ed25519PKCS8Prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]

    public var certificateKey: Certificate.PrivateKey {
        switch self {
        case let .ed25519(key): return Certificate.PrivateKey(key)
        case let .p256(key): return Certificate.PrivateKey(key)
        case let .rsa(key): return Certificate.PrivateKey(key)
        }
    }

    /// Talos derives leaf key types from the CA's signature algorithm, so these must stay standard.
    public var signatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self {
        case .ed25519: return .ed25519
        case .p256: return .ecdsaWithSHA256
        case .rsa: return .sha256WithRSAEncryption
        }
    }

    public var pem: String {
        switch self {
        case let .ed25519(key):
            return Self.pem("ED25519 PRIVATE KEY", Self.ed25519PKCS8Prefix + Array(key.rawRepresentation))
        case let .p256(key):
            // SEC1 ECPrivateKey with curve OID and public point, as Go's x509.MarshalECPrivateKey writes it.
            let der: [UInt8] = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20] + Array(key.rawRepresentation)
                + [0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
                + [0xa1, 0x44, 0x03, 0x42, 0x00] + Array(key.publicKey.x963Representation)
            return Self.pem("EC PRIVATE KEY", der)
        case let .rsa(key):
            return key.pemRepresentation.hasSuffix("\n") ? key.pemRepresentation : key.pemRepresentation + "\n"
        }
    }

    public init(pem text: String) throws {
        let document = try PEMDocument(pemString: text)
        let der = document.derBytes
        let isEd25519PKCS8 = der.count == 48 && Array(der.prefix(16)) == Self.ed25519PKCS8Prefix
        switch document.discriminator {
        case "ED25519 PRIVATE KEY":
            guard isEd25519PKCS8 else { throw KeyError.malformed(document.discriminator) }
            self = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32)))
        case "EC PRIVATE KEY":
            self = .p256(try P256.Signing.PrivateKey(pemRepresentation: text))
        case "RSA PRIVATE KEY":
            self = .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: text))
        case "PRIVATE KEY":
            if isEd25519PKCS8 {
                self = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32)))
            } else if let ec = try? P256.Signing.PrivateKey(pemRepresentation: text) {
                self = .p256(ec)
            } else {
                self = .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: text))
            }
        default:
            throw KeyError.unsupported(document.discriminator)
        }
    }

    static func pem(_ label: String, _ der: [UInt8]) -> String {
        PEMDocument(type: label, derBytes: der).pemString + "\n"
    }

    public enum KeyError: Error, CustomStringConvertible {
        case malformed(String)
        case unsupported(String)

        public var description: String {
            switch self {
            case let .malformed(label): return "malformed \(label) block"
            case let .unsupported(label): return "unsupported key block `\(label)` (expected ED25519, EC, RSA or PKCS#8 PRIVATE KEY)"
            }
        }
    }
}
