import Foundation
import ProvisionCore
import X509

/// A talosconfig file (talosctl's client config) for the cluster, with a freshly minted Ed25519
/// client certificate for one role.
public enum TalosConfig {
    public enum Role: String, Sendable, CaseIterable {
        case admin, `operator`

        var organization: String { "os:\(rawValue)" }
    }

    public static func render(bundle: SecretsBundle, inventory: Inventory, role: Role, now: Date = Date()) throws -> String {
        let (ca, caKey) = try bundle.osAuthority()
        let leaf = SigningKey.ed25519(.init())
        let certificate = try CertificateFactory.talosClient(roles: [role.organization], caCertificate: ca, caKey: caKey, leafKey: leaf, now: now)
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
                    crt: \(SecretsBundle.encode(try CertificateFactory.pem(certificate)))
                    key: \(SecretsBundle.encode(leaf.pem))

            """
    }
}
