import Foundation
import KubeKit
import ProvisionCore
import Testing
import TestSupport
@testable import Lab

/// The real kubectl (an independent client) against the lab's Kubernetes API.
@Suite struct KubectlInteropTests {
    static let manifest = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: demo-apps
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: demo-apps
          annotations:
            note: "true"
        data:
          mode: lab
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        metadata:
          name: probe
          namespace: kube-system
        spec:
          selector:
            matchLabels: {app: probe}
          template:
            metadata:
              labels: {app: probe}
            spec:
              containers:
                - name: probe
                  image: busybox
        """

    @Test(.timeLimit(.minutes(2))) func kubectlGetsAppliesAndDeletes() async throws {
        let lab = try await KubeLab()
        defer { Task { await lab.stop() } }
        let version = try await lab.kubectl(["get", "--raw", "/version"])
        #expect(version.status == 0, "\(version.stderr)")
        #expect(version.stdout.contains("\"gitVersion\":\"v1.34.2\""), "\(version.stdout)")

        let nodes = try await eventuallyOutput { try await lab.kubectl(["get", "nodes"]) } until: { $0.contains("cp1") && $0.contains("w1") }
        #expect(nodes.contains("NotReady"), "no CNI yet: \(nodes)")
        #expect(nodes.contains("control-plane"))

        let applied = try await lab.kubectl(["apply", "--server-side", "-f", "-"], stdin: Self.manifest)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("namespace/demo-apps serverside-applied"), "\(applied.stdout)")
        #expect(applied.stdout.contains("daemonset.apps/probe serverside-applied"))

        let daemonSets = try await lab.kubectl(["get", "ds", "-n", "kube-system"])
        #expect(daemonSets.status == 0, "\(daemonSets.stderr)")
        #expect(daemonSets.stdout.contains("probe"), "\(daemonSets.stdout)")
        let configMap = try await lab.kubectl(["get", "configmap", "settings", "-n", "demo-apps", "-o", "json", "--show-managed-fields"])
        let object = try JSON.parse(Data(configMap.stdout.utf8))
        #expect(object[path: "data.mode"] == "lab")
        #expect(object[path: "metadata.annotations"]?["note"] == "true", "a quoted YAML scalar stays a string")
        #expect(object[path: "metadata.managedFields"]?.array?.first?["manager"] == "kubectl", "\(object)")

        let again = try await lab.kubectl(["apply", "--server-side", "-f", "-"], stdin: Self.manifest)
        #expect(again.status == 0, "\(again.stderr)")

        let deleted = try await lab.kubectl(["delete", "configmap", "settings", "-n", "demo-apps"])
        #expect(deleted.status == 0, "\(deleted.stderr)")
        let gone = try await lab.kubectl(["get", "configmap", "settings", "-n", "demo-apps"])
        #expect(gone.status != 0)
        #expect(gone.stderr.contains("NotFound") || gone.stderr.contains("not found"), "\(gone.stderr)")
    }

    func eventuallyOutput(_ run: () async throws -> Subprocess.Result, until done: (String) -> Bool) async throws -> String {
        var last = ""
        try await eventually(timeout: .seconds(30)) {
            let result = try await run()
            last = result.stdout + result.stderr
            guard done(result.stdout) else { throw PeerError("not yet: \(last)") }
        }
        return last
    }
}
