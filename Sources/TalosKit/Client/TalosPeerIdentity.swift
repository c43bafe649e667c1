import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Who a Talos API endpoint is, read from the certificate it presents in the TLS handshake. This
/// is the only thing that decides whether anything may be sent to it (reference/talos-api.md §4).
public enum TalosPeerIdentity: Sendable, Equatable, CustomStringConvertible {
    /// Talos' maintenance service: leaf CN `maintenance-service.talos.dev` from a per-boot CA.
    /// `spki` is the base64 SHA-256 of its SubjectPublicKeyInfo, the fingerprint Talos prints; the
    /// key is new on every boot, so a changed `spki` means the machine rebooted.
    case maintenance(spki: String)
    /// A certificate issued by this cluster's OS CA and valid now: a node we configured.
    case ours(commonName: String)
    /// Neither: another cluster's node, a proxy, or something that is not Talos.
    case other(subject: String, issuer: String)

    public static let maintenanceCommonName = "maintenance-service.talos.dev"

    public var description: String {
        switch self {
        case let .maintenance(spki): return "Talos' maintenance identity (fingerprint \(spki))"
        case let .ours(name): return "a certificate from this cluster's OS CA (CN=\(name))"
        case let .other(subject, issuer): return "a certificate for \(subject.isEmpty ? "an empty subject" : subject) issued by \(issuer.isEmpty ? "an empty subject" : issuer)"
        }
    }

    /// Classifies the chain a server presented. Our CA is checked first, so a maintenance name on
    /// a certificate from our CA is ours, and a maintenance name from any other issuer is only
    /// maintenance (never trusted as configured).
    public static func classify(_ chain: [NIOSSLCertificate], ourCA: Certificate?) -> TalosPeerIdentity {
        guard let first = chain.first, let leaf = try? Certificate(derEncoded: first.toDERBytes()) else {
            return .other(subject: "(unreadable certificate)", issuer: "")
        }
        let commonName = leaf.subject.commonName ?? ""
        if let ourCA, isIssued(leaf, by: ourCA) { return .ours(commonName: commonName) }
        if commonName == maintenanceCommonName, let spki = try? spkiFingerprint(leaf) {
            return .maintenance(spki: spki)
        }
        return .other(subject: leaf.subject.description, issuer: leaf.issuer.description)
    }

    /// The leaf is signed by `ca` and valid now: the whole of Talos' own chain check, since Talos
    /// issues node and client certificates directly from the OS CA.
    public static func isIssued(_ leaf: Certificate, by ca: Certificate, now: Date = Date()) -> Bool {
        leaf.issuer == ca.subject && ca.publicKey.isValidSignature(leaf.signature, for: leaf)
            && leaf.notValidBefore <= now && now <= leaf.notValidAfter
    }

    /// Standard base64 of SHA-256 over the DER SubjectPublicKeyInfo: talosctl's `--cert-fingerprint`.
    static func spkiFingerprint(_ certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        return Data(SHA256.hash(data: serializer.serializedBytes)).base64EncodedString()
    }
}

extension DistinguishedName {
    var commonName: String? {
        for rdn in self { for attribute in rdn where attribute.type == .RDNAttributeType.commonName { return attribute.value.description } }
        return nil
    }
}
