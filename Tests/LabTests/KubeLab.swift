import Foundation
import KubeKit
import ProvisionCore
import TalosKit
import TestSupport
@testable import Lab

/// A lab cluster with its Kubernetes API: control planes configured and bootstrapped (so the API
/// answers), the API server on an address of its own, and an admin kubeconfig written 0600.
struct KubeLab {
    let fixture: LabFixture
    let api: LabKubeAPI
    let host: String
    let kubeconfigPath: String
    let kubeconfig: Kubeconfig

    init(nodes: [String] = ["cp1", "w1"], timeScale: Double = 0) async throws {
        fixture = try LabFixture(nodes: nodes, timeScale: timeScale)
        try await fixture.configure(nodes)
        let first = try fixture.client(nodes[0], try fixture.admin)
        try await eventually { _ = try await first.bootstrap() }
        host = Loopback.address()
        let ca = (certificate: Self.pem(fixture.bundle.k8s.crt), key: Self.pem(fixture.bundle.k8s.key))
        api = try await LabKubeAPI(host: host, port: 6443, caPEM: ca.certificate, caKeyPEM: ca.key, cluster: fixture.cluster,
                                   kubernetesVersion: "v1.34.2", timeScale: timeScale)
        let text = try SimulatedKubeconfig.make(clusterName: "demo", endpoint: "https://\(host):6443", ca: ca)
        kubeconfigPath = temporaryDirectory() + "/kubeconfig"
        try PrivateFile.write(Array(text.utf8), to: kubeconfigPath)
        kubeconfig = try Kubeconfig.parse(text)
    }

    static func pem(_ base64: String) -> String { String(decoding: Data(base64Encoded: base64) ?? Data(), as: UTF8.self) }

    /// The real kubectl against the lab API.
    func kubectl(_ arguments: [String], stdin: String? = nil) async throws -> Subprocess.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = kubeconfigPath
        environment["HOME"] = temporaryDirectory()
        return try await Subprocess.run(["kubectl"] + arguments, stdin: stdin, environment: environment)
    }

    /// kubectl running while `meanwhile` runs (a watch that sees what `meanwhile` changes); it is
    /// stopped by its own --request-timeout.
    func kubectl(_ arguments: [String], background meanwhile: @Sendable () async throws -> Void) async throws -> Subprocess.Result {
        async let running = kubectl(arguments)
        try await meanwhile()
        return try await running
    }

    func stop() async { await api.stop() }
}
