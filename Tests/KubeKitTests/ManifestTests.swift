import Foundation
import Testing
@testable import KubeKit

/// Manifests and kubeconfigs read as Kubernetes reads them.
@Suite struct ManifestTests {
    @Test func documentsKeepQuotedScalarsAsStringsAndUnpackLists() throws {
        let objects = try Manifest.documents("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: a, annotations: {enabled: "true", port: "8080"}}
            data: {plain: 8080, flag: true, empty: ~}
            ---
            ---
            apiVersion: v1
            kind: List
            items:
              - {apiVersion: v1, kind: Namespace, metadata: {name: n}}
            """)
        #expect(objects.map(\.kind) == ["ConfigMap", "Namespace"])
        #expect(objects[0][path: "metadata.annotations"]?["enabled"] == "true")
        #expect(objects[0][path: "metadata.annotations"]?["port"] == "8080")
        #expect(objects[0][path: "data.plain"] == 8080)
        #expect(objects[0][path: "data.flag"] == true)
        #expect(objects[0][path: "data.empty"] == .null)
    }

    @Test func anObjectWithoutIdentityIsRefusedNamingTheDocument() {
        #expect(throws: Manifest.Failure.self) { try Manifest.documents("kind: ConfigMap\nmetadata: {name: a}\n", source: "x.yaml") }
        do { _ = try Manifest.documents("a: [unclosed", source: "x.yaml") } catch { #expect("\(error)".contains("x.yaml")) }
    }

    @Test func namespacesAndCRDsComeFirstThenIdentitiesThenWorkloads() {
        let kinds = ["Deployment", "ClusterSecretStore", "ServiceAccount", "CustomResourceDefinition", "Secret", "Namespace"]
        let objects: [JSON] = kinds.enumerated().map { ["apiVersion": "v1", "kind": .string($0.element), "metadata": ["name": .string("o\($0.offset)")]] }
        #expect(Manifest.ordered(objects).map(\.kind) == ["Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "Deployment", "ClusterSecretStore"])
    }

    @Test func kubeconfigSelectsTheContextsClusterAndUser() throws {
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
              - {name: lab, cluster: {server: "https://127.0.0.10:6443", certificate-authority-data: \(b64("CA"))}}
            users:
              - {name: admin, user: {client-certificate-data: \(b64("CERT")), client-key-data: \(b64("KEY"))}}
            contexts:
              - {name: admin@lab, context: {cluster: lab, user: admin, namespace: apps}}
            current-context: admin@lab
            """
        let config = try Kubeconfig.parse(text)
        #expect(config.server.absoluteString == "https://127.0.0.10:6443")
        #expect(config.caPEM == "CA" && config.certificatePEM == "CERT" && config.keyPEM == "KEY")
        #expect(config.namespace == "apps")
        do {
            _ = try Kubeconfig.parse(text, context: "other")
            Issue.record("an unknown context was accepted")
        } catch {
            #expect("\(error)".contains("admin@lab"), "names the contexts it has")
        }
    }
}
