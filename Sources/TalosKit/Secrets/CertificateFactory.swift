import Crypto
import Foundation
import SwiftASN1
import X509

/// Mints the certificates Talos expects, shaped as `talosctl` mints them (reference §5.3, §6).
public enum CertificateFactory {
    static let tenYears: TimeInterval = 87_600 * 3600

    /// A self-signed CA: IsCA (critical), KeyUsage certSign+digitalSignature (critical), EKU
    /// serverAuth+clientAuth, random 20-byte SKI, random serial below 2^128, 10-year validity.
    public static func certificateAuthority(key: SigningKey, organization: String?, now: Date = Date()) throws -> Certificate {
        let name = try organization.map { org in try DistinguishedName { OrganizationName(org) } } ?? DistinguishedName()
        return try Certificate(
            version: .v3, serialNumber: serial(), publicKey: key.certificateKey.publicKey,
            notValidBefore: now, notValidAfter: now + tenYears, issuer: name, subject: name,
            signatureAlgorithm: key.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectKeyIdentifier(keyIdentifier: ArraySlice(SecureRandom.bytes(20)))
            },
            issuerPrivateKey: key.certificateKey)
    }

    /// A client certificate for the Talos API: roles in O, no CN, EKU clientAuth only, not a CA.
    /// Back-dated by `backdate` so a node whose clock runs a little behind still accepts it.
    public static func talosClient(roles: [String], caCertificate: Certificate, caKey: SigningKey,
                                   leafKey: SigningKey, validity: TimeInterval = 365 * 86400,
                                   backdate: TimeInterval = 300, now: Date = Date()) throws -> Certificate {
        let subject = try DistinguishedName { for role in roles.sorted() { OrganizationName(role) } }
        return try Certificate(
            version: .v3, serialNumber: serial(), publicKey: leafKey.certificateKey.publicKey,
            notValidBefore: now - backdate, notValidAfter: now + validity, issuer: caCertificate.subject, subject: subject,
            signatureAlgorithm: caKey.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
                if let ski = try? caCertificate.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: ski.keyIdentifier)
                }
            },
            issuerPrivateKey: caKey.certificateKey)
    }

    static func serial() -> Certificate.SerialNumber {
        var bytes = SecureRandom.bytes(16)
        bytes[0] &= 0x7f
        return Certificate.SerialNumber(bytes: bytes)
    }

    public static func pem(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString + "\n"
    }
}
