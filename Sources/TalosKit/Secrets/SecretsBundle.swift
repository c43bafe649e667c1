import Crypto
import _CryptoExtras
import Foundation
import ProvisionCore
import X509

/// The cluster's root of trust, field for field as `talosctl gen secrets` writes `secrets.yaml`.
/// Certificate and key values are kept exactly as stored (standard base64 of the PEM text), so a
/// bundle adopted from talosctl or talhelper is written back unchanged.
public struct SecretsBundle: Sendable, Equatable {
    public struct Pair: Sendable, Equatable {
        public var crt: String
        public var key: String
    }

    public var clusterID: String
    public var clusterSecret: String
    public var bootstrapToken: String
    public var secretboxEncryptionSecret: String
    /// Only present in bundles made for Talos <= 1.2; kept when imported.
    public var aescbcEncryptionSecret: String?
    public var trustdToken: String
    public var etcd: Pair
    public var k8s: Pair
    public var k8sAggregator: Pair
    public var k8sServiceAccountKey: String
    public var os: Pair

    /// Generates a bundle as talosctl does for Talos >= 1.7: Ed25519 OS CA, P-256 etcd/Kubernetes/
    /// aggregator CAs (the aggregator with an empty subject), RSA-4096 service-account key.
    public static func generate(now: Date = Date()) throws -> SecretsBundle {
        func pair(_ key: SigningKey, _ organization: String?) throws -> Pair {
            let certificate = try CertificateFactory.certificateAuthority(key: key, organization: organization, now: now)
            return Pair(crt: encode(try CertificateFactory.pem(certificate)), key: encode(key.pem))
        }
        return SecretsBundle(
            clusterID: Data(SecureRandom.bytes(32)).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_"),
            clusterSecret: Data(SecureRandom.bytes(32)).base64EncodedString(),
            bootstrapToken: token(),
            secretboxEncryptionSecret: Data(SecureRandom.bytes(32)).base64EncodedString(),
            aescbcEncryptionSecret: nil,
            trustdToken: token(),
            etcd: try pair(.p256(P256.Signing.PrivateKey()), "etcd"),
            k8s: try pair(.p256(P256.Signing.PrivateKey()), "kubernetes"),
            k8sAggregator: try pair(.p256(P256.Signing.PrivateKey()), nil),
            k8sServiceAccountKey: encode(SigningKey.rsa(try _RSA.Signing.PrivateKey(keySize: .bits4096)).pem),
            os: try pair(.ed25519(Curve25519.Signing.PrivateKey()), "talos"))
    }

    /// A bundle shaped like a real one with no key in it: renders configs for a schema check before
    /// the real bundle exists (the first run), without the seconds an RSA-4096 key takes.
    public static let placeholder: SecretsBundle = {
        let text = encode("-----BEGIN PLACEHOLDER-----\n-----END PLACEHOLDER-----\n")
        let pair = Pair(crt: text, key: text)
        return SecretsBundle(clusterID: "placeholder", clusterSecret: text, bootstrapToken: "aaaaaa.aaaaaaaaaaaaaaaa",
                             secretboxEncryptionSecret: text, aescbcEncryptionSecret: nil, trustdToken: "aaaaaa.aaaaaaaaaaaaaaaa",
                             etcd: pair, k8s: pair, k8sAggregator: pair, k8sServiceAccountKey: text, os: pair)
    }()

    /// The OS (Talos API) CA, decoded, for minting client certificates.
    public func osAuthority() throws -> (certificate: Certificate, key: SigningKey) {
        (try Certificate(pemEncoded: Self.decode(os.crt)), try SigningKey(pem: Self.decode(os.key)))
    }

    /// Every secret string in the bundle: registered for redaction, and what leak tests search for.
    public var secretValues: [String] {
        var values = [clusterSecret, bootstrapToken, secretboxEncryptionSecret, trustdToken, k8sServiceAccountKey,
                      etcd.key, k8s.key, k8sAggregator.key, os.key]
        if let aescbc = aescbcEncryptionSecret { values.append(aescbc) }
        for key in [etcd.key, k8s.key, k8sAggregator.key, os.key, k8sServiceAccountKey] {
            if let pem = try? Self.decode(key) {
                values.append(pem)
                values += pem.split(separator: "\n").filter { !$0.hasPrefix("-----") && $0.count > 16 }.map(String.init)
            }
        }
        return values
    }

    // MARK: - Encoding helpers

    static func encode(_ pem: String) -> String { Data(pem.utf8).base64EncodedString() }

    static func decode(_ value: String) throws -> String {
        guard let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8) else {
            throw BundleError("is not base64 of a PEM block")
        }
        return text
    }

    /// `[a-z0-9]{6}.[a-z0-9]{16}`, unbiased: bytes >= 252 are rejected before mod 36.
    static func token() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        func part(_ count: Int) -> String {
            var out = ""
            while out.count < count {
                let byte = SecureRandom.bytes(1)[0]
                if byte < 252 { out.append(alphabet[Int(byte) % 36]) }
            }
            return out
        }
        return part(6) + "." + part(16)
    }

    struct BundleError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
