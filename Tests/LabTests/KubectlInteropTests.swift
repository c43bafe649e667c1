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

    /// Everyday commands as users type them: `create` (kubectl sends Kubernetes protobuf for these),
    /// client-side `apply -f` (last-applied annotation, strategic merge patch), `label`.
    @Test(.timeLimit(.minutes(2))) func everydayKubectlCommandsWork() async throws {
        let lab = try await KubeLab()
        defer { Task { await lab.stop() } }
        #expect(try await lab.kubectl(["create", "namespace", "team"]).status == 0)
        let created = try await lab.kubectl(["create", "configmap", "c1", "-n", "team", "--from-literal=k=v", "--from-literal=z=w"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try await lab.kubectl(["get", "configmap", "c1", "-n", "team", "-o", "jsonpath={.data.k}{.data.z}"]).stdout == "vw")
        #expect(try await lab.kubectl(["create", "secret", "generic", "s1", "--from-literal=p=q"]).status == 0)
        #expect(try await lab.kubectl(["get", "secret", "s1", "-o", "jsonpath={.data.p}"]).stdout == "cQ==", "stored base64, as sent")
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  namespace: team\ndata:\n  a: \"1\"\n"
        let first = try await lab.kubectl(["apply", "-f", "-"], stdin: manifest)
        #expect(first.status == 0 && first.stdout.contains("created"), "\(first.stdout)\(first.stderr)")
        let second = try await lab.kubectl(["apply", "-f", "-"], stdin: manifest.replacingOccurrences(of: "a: \"1\"", with: "a: \"2\""))
        #expect(second.status == 0 && second.stdout.contains("configured"), "\(second.stdout)\(second.stderr)")
        #expect(try await lab.kubectl(["get", "configmap", "plain", "-n", "team", "-o", "jsonpath={.data.a}"]).stdout == "2")
        #expect(try await lab.kubectl(["label", "configmap", "plain", "-n", "team", "env=x"]).status == 0)
        #expect(try await lab.kubectl(["get", "configmap", "plain", "-n", "team", "-o", "jsonpath={.metadata.labels.env}"]).stdout == "x")
        // A kind the lab cannot read as protobuf says so (and how) instead of failing obscurely.
        let deployment = try await lab.kubectl(["create", "deployment", "d", "--image=nginx"])
        #expect(deployment.status != 0 && deployment.stderr.contains("send JSON"), "\(deployment.stderr)")
    }

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
