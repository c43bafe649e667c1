import Crypto
import Foundation
import SwiftASN1
import ProvisionCore
import X509

/// What `provision secrets show` prints: enough to recognise a bundle (key types, subjects, expiry,
/// fingerprints), nothing that would let someone use it.
public struct SecretsSummary: Sendable {
    public struct Authority: Sendable {
        public var name: String
        public var keyType: String
        public var subject: String
        public var notAfter: Date
        public var sha256: String
    }

    public var authorities: [Authority]
    public var serviceAccountKey: String
    public var clusterIDPrefix: String

    public init(_ bundle: SecretsBundle) throws {
        authorities = try [("os", bundle.os), ("etcd", bundle.etcd), ("k8s", bundle.k8s), ("k8saggregator", bundle.k8sAggregator)].map { name, pair in
            let certificate = try Certificate(pemEncoded: try SecretsBundle.decode(pair.crt))
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let hex = Array(SHA256.hash(data: serializer.serializedBytes).hexString.uppercased())
            let fingerprint = stride(from: 0, to: hex.count, by: 2).map { String(hex[$0..<$0 + 2]) }.joined(separator: ":")
            return Authority(name: name, keyType: Self.describe(try SigningKey(pem: try SecretsBundle.decode(pair.key))),
                             subject: certificate.subject.description.isEmpty ? "(empty)" : certificate.subject.description,
                             notAfter: certificate.notValidAfter, sha256: fingerprint)
        }
        serviceAccountKey = Self.describe(try SigningKey(pem: try SecretsBundle.decode(bundle.k8sServiceAccountKey)))
        clusterIDPrefix = String(bundle.clusterID.prefix(6)) + "…"
    }

    static func describe(_ key: SigningKey) -> String {
        switch key {
        case .ed25519: return "Ed25519"
        case .p256: return "ECDSA P-256"
        case let .rsa(rsa): return "RSA \(rsa.keySizeInBits)"
        }
    }
}
