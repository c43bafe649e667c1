import Crypto
import Foundation
import TalosKit
import X509

/// The admin kubeconfig Talos' Kubeconfig call returns: cluster `<name>` at the control-plane
/// endpoint, user `admin@<name>` with a fresh client certificate from the Kubernetes CA (CN admin,
/// O system:masters), context `admin@<name>` in namespace default.
enum SimulatedKubeconfig {
    static func make(clusterName: String, endpoint: String, ca: (certificate: String, key: String)) throws -> String {
        let caCertificate = try Certificate(pemEncoded: ca.certificate)
        let caKey = try SigningKey(pem: ca.key)
        let leafKey = SigningKey.p256(.init())
        let leaf = try CertificateFactory.kubernetesClient(user: "admin", groups: ["system:masters"], caCertificate: caCertificate,
                                                           caKey: caKey, leafKey: leafKey)
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let user = "admin@\(clusterName)"
        return """
        apiVersion: v1
        kind: Config
        clusters:
            - name: \(clusterName)
              cluster:
                server: \(endpoint)
                certificate-authority-data: \(b64(ca.certificate))
        users:
            - name: \(user)
              user:
                client-certificate-data: \(b64(try CertificateFactory.pem(leaf)))
                client-key-data: \(b64(leafKey.pem))
        contexts:
            - context:
                cluster: \(clusterName)
                namespace: default
                user: \(user)
              name: \(user)
        current-context: \(user)

        """
    }
}
