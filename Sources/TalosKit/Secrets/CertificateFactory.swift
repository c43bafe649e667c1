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

    /// A TLS server leaf as Talos' apid issues it: CN = the node's name, SANs = its addresses and
    /// names, KeyUsage digitalSignature, EKU serverAuth, 24 h validity (rotated by the node).
    public static func serverLeaf(commonName: String, ipAddresses: [String], dnsNames: [String], issuer: Certificate?,
                                  issuerKey: SigningKey, leafKey: SigningKey, validity: TimeInterval = 86400,
                                  now: Date = Date()) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(commonName) }
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            let octets = address.split(separator: ".").compactMap { UInt8($0) }
            if octets.count == 4 { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(octets)))) }
        }
        return try Certificate(
            version: .v3, serialNumber: serial(), publicKey: leafKey.certificateKey.publicKey,
            notValidBefore: now - 60, notValidAfter: now + validity, issuer: issuer?.subject ?? DistinguishedName(), subject: subject,
            signatureAlgorithm: issuerKey.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: issuerKey.certificateKey)
    }

    /// A Kubernetes client certificate (CN = user, O = groups, EKU clientAuth), as Talos' Kubeconfig
    /// call issues for `admin` in `system:masters`.
    public static func kubernetesClient(user: String, groups: [String], caCertificate: Certificate, caKey: SigningKey,
                                        leafKey: SigningKey, validity: TimeInterval = 365 * 86400, now: Date = Date()) throws -> Certificate {
        let subject = try DistinguishedName {
            for group in groups { OrganizationName(group) }
            CommonName(user)
        }
        return try Certificate(
            version: .v3, serialNumber: serial(), publicKey: leafKey.certificateKey.publicKey,
            notValidBefore: now - 10, notValidAfter: now + validity, issuer: caCertificate.subject, subject: subject,
            signatureAlgorithm: caKey.signatureAlgorithm,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
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
