import Foundation
import ProvisionCore
import X509

/// A talosconfig file (talosctl's client config) for the cluster, with a freshly minted Ed25519
/// client certificate for one role.
public enum TalosConfig {
    public enum Role: String, Sendable, CaseIterable {
        /// `etcdBackup` is Talos' `os:etcd:backup`, for a backup cron host: EtcdSnapshot, and reading
        /// etcd's members, status and alarms; nothing else (talos v1.13.9 `machined.go`).
        case admin, `operator`, etcdBackup = "etcd-backup"

        var organization: String { self == .etcdBackup ? "os:etcd:backup" : "os:\(rawValue)" }
    }

    /// PEM credentials for a client of the cluster's Talos API: the OS CA, a fresh Ed25519
    /// certificate for `roles`, and its key.
    public static func credentials(bundle: SecretsBundle, roles: [String], validity: TimeInterval = 365 * 86400,
                                   now: Date = Date()) throws -> (ca: String, certificate: String, key: String) {
        let (ca, caKey) = try bundle.osAuthority()
        let leaf = SigningKey.ed25519(.init())
        let certificate = try CertificateFactory.talosClient(roles: roles, caCertificate: ca, caKey: caKey, leafKey: leaf,
                                                             validity: validity, now: now)
        return (try SecretsBundle.decode(bundle.os.crt), try CertificateFactory.pem(certificate), leaf.pem)
    }

    public static func render(bundle: SecretsBundle, inventory: Inventory, role: Role, now: Date = Date()) throws -> String {
        let client = try credentials(bundle: bundle, roles: [role.organization], now: now)
        let endpoints = inventory.cluster.talosEndpoints.isEmpty
            ? inventory.controlPlanes.map(\.address.value.description)
            : inventory.cluster.talosEndpoints.map(\.value.description)
        let name = inventory.cluster.name.value
        return """
            context: \(name)
            contexts:
                \(name):
                    endpoints:
            \(endpoints.map { "            - \($0)" }.joined(separator: "\n"))
                    ca: \(bundle.os.crt)
                    crt: \(SecretsBundle.encode(client.certificate))
                    key: \(SecretsBundle.encode(client.key))

            """
    }
}
