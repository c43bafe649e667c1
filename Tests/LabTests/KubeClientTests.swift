import Foundation
import KubeKit
import Testing
import TestSupport
@testable import Lab

/// Our Kubernetes client against the lab API: server-side apply semantics, CRDs, node readiness
/// from a CNI rollout, webhooks that must be ready, and the API server's refusals.
@Suite struct KubeClientTests {
    func configMap(_ data: JSON, name: String = "settings") -> JSON {
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "default"], "data": data]
    }

    @Test(.timeLimit(.minutes(2))) func serverSideApplyOwnsFieldsAndReportsConflicts() async throws {
        let lab = try await KubeLab(nodes: ["cp1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }

        let first = try await kube.apply(configMap(["a": "1", "b": "2"]))
        let again = try await kube.apply(configMap(["a": "1", "b": "2"]))
        #expect(first[path: "metadata.resourceVersion"] == again[path: "metadata.resourceVersion"], "a re-apply changes nothing")

        let dropped = try await kube.apply(configMap(["a": "1"]))
        #expect(dropped["data"] == ["a": "1"], "a field the manager stopped applying is removed")

        try await kube.apply(configMap(["a": "1", "c": "3"]), fieldManager: "someone-else")
        do {
            try await kube.apply(configMap(["a": "changed"]), fieldManager: "someone-else-again")
            Issue.record("a conflicting apply was accepted")
        } catch let error as KubeError {
            #expect(error.conflict, "\(error)")
            #expect(error.message.contains(".data.a"), "\(error.message)")
        }
        let forced = try await kube.apply(configMap(["a": "changed"]), fieldManager: "someone-else-again", force: true)
        #expect(forced[path: "data.a"] == "changed")
        #expect(forced[path: "data.c"] == "3", "other managers' fields stay")

        let fetched = try await kube.get("v1", "ConfigMap", name: "settings", namespace: "default")
        #expect(fetched?[path: "data.a"] == "changed")
        #expect(try await kube.delete("v1", "ConfigMap", name: "settings", namespace: "default"))
        #expect(try await kube.delete("v1", "ConfigMap", name: "settings", namespace: "default") == false, "already gone")
    }

    @Test(.timeLimit(.minutes(2))) func aManifestWithACRDAndItsResourceAppliesInOrder() async throws {
        let lab = try await KubeLab(nodes: ["cp1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        let manifest = """
            apiVersion: example.com/v1
            kind: Widget
            metadata: {name: first, namespace: shop}
            spec: {size: 3}
            ---
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: widgets.example.com}
            spec:
              group: example.com
              scope: Namespaced
              names: {kind: Widget, plural: widgets, singular: widget}
              versions:
                - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop}
            """
        try await kube.apply(manifest: try Manifest.documents(manifest), timeout: .seconds(30))
        let widget = try await kube.get("example.com/v1", "Widget", name: "first", namespace: "shop")
        #expect(widget?[path: "spec.size"] == 3)
        let listed = try await lab.kubectl(["get", "widgets", "-n", "shop"])
        #expect(listed.stdout.contains("first"), "kubectl discovers the CRD's kind too: \(listed.stdout) \(listed.stderr)")
    }

    @Test(.timeLimit(.minutes(2))) func nodesTurnReadyOnceTheCNIDaemonSetRollsOut() async throws {
        let lab = try await KubeLab(nodes: ["cp1", "w1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        try await kube.wait(for: "both nodes to register", timeout: .seconds(30), interval: .milliseconds(20)) {
            try await kube.list("v1", "Node").count == 2 ? nil : "registering"
        }
        #expect(try await kube.notReadyNodes().count == 2)
        #expect(try await kube.notReadyNodes().first?.contains("cni plugin not initialized") == true)
        try await kube.apply(["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": ["name": "cilium", "namespace": "kube-system"],
                              "spec": ["selector": ["matchLabels": ["k8s-app": "cilium"]],
                                       "template": ["metadata": ["labels": ["k8s-app": "cilium"]], "spec": ["containers": [["name": "agent", "image": "cilium"]]]]]])
        try await kube.wait(for: "the CNI rollout", timeout: .seconds(30), interval: .milliseconds(20)) {
            try await kube.rolloutPending("DaemonSet", name: "cilium", namespace: "kube-system")
        }
        try await kube.wait(for: "nodes Ready", timeout: .seconds(30), interval: .milliseconds(20)) {
            let notReady = try await kube.notReadyNodes()
            return notReady.isEmpty ? nil : notReady.joined(separator: ", ")
        }
        let shown = try await lab.kubectl(["get", "nodes"])
        #expect(shown.stdout.split(separator: "\n").dropFirst().allSatisfy { $0.contains(" Ready ") }, "\(shown.stdout)")
    }

    @Test(.timeLimit(.minutes(2))) func aWebhookWithoutEndpointsRefusesWhatItValidates() async throws {
        let lab = try await KubeLab(nodes: ["cp1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        try await kube.apply(["apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                              "metadata": ["name": "guard"],
                              "webhooks": [["name": "configmaps.guard.example.com", "failurePolicy": "Fail",
                                            "clientConfig": ["service": ["name": "guard", "namespace": "default"]],
                                            "rules": [["apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]]]]]])
        do {
            try await kube.apply(configMap(["a": "1"]))
            Issue.record("a webhook without endpoints let the write through")
        } catch let error as KubeError {
            #expect(error.status == 500)
            #expect(error.message.contains("no endpoints available for service \"guard\""), "\(error.message)")
        }
        #expect(try await kube.endpointsReady(service: "guard", namespace: "default") == false)
    }

    @Test(.timeLimit(.minutes(2))) func theAPIServerRefusesBadObjectsClearly() async throws {
        let lab = try await KubeLab(nodes: ["cp1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        await #expect(throws: KubeError.self) {
            try await kube.apply(["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "x", "namespace": "nowhere"], "stringData": ["k": "v"]])
        }
        do {
            try await kube.apply(["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "x", "namespace": "default"], "data": ["k": "not base64!"]])
            Issue.record("a Secret with data that is not base64 was stored")
        } catch let error as KubeError {
            #expect(error.status == 400 && error.message.contains("illegal base64"), "\(error)")
        }
        let secret = try await kube.apply(["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "x", "namespace": "default"], "stringData": ["k": "v"]])
        #expect(secret[path: "data.k"] == "dg==", "stringData is stored base64 in data, as the API server does")
    }

    /// A controller that read a Node before a cordon never writes the old spec back: its stale
    /// write is a conflict (found by CI: a status post undid a drain's cordon).
    @Test func aStaleControllerWriteDoesNotUndoAClientsChange() async throws {
        let store = KubeStore()
        let node = KubeResourceCatalog.builtIn.first { $0.kind == "Node" }!
        await store.controllerWrite(node, ["apiVersion": "v1", "kind": "Node", "metadata": ["name": "w1"]])
        var read = try await store.get(node, namespace: nil, name: "w1")
        _ = try await store.mergePatch(node, namespace: nil, name: "w1", ["spec": ["unschedulable": true]], manager: "kubectl")
        read.set("status.conditions", [["type": "Ready", "status": "True"]])
        await store.controllerWrite(node, read)
        #expect(try await store.get(node, namespace: nil, name: "w1")[path: "spec.unschedulable"] == true, "the cordon stands")
        var fresh = try await store.get(node, namespace: nil, name: "w1")
        fresh.set("status.conditions", [["type": "Ready", "status": "True"]])
        await store.controllerWrite(node, fresh)
        let stored = try await store.get(node, namespace: nil, name: "w1")
        #expect(stored.condition("Ready") == "True" && stored[path: "spec.unschedulable"] == true, "a write from a fresh read goes through")
    }

    @Test(.timeLimit(.minutes(2))) func drainRespectsPodDisruptionBudgets() async throws {
        let lab = try await KubeLab(nodes: ["cp1", "w1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        try await kube.apply(["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": ["name": "cilium", "namespace": "kube-system"],
                              "spec": ["selector": ["matchLabels": ["k8s-app": "cilium"]],
                                       "template": ["metadata": ["labels": ["k8s-app": "cilium"]], "spec": ["containers": [["name": "agent", "image": "cilium"]]]]]])
        try await kube.apply(["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "default"],
                              "spec": ["replicas": 2, "selector": ["matchLabels": ["app": "web"]],
                                       "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "web", "image": "nginx"]]]]]])
        try await kube.wait(for: "web to roll out", timeout: .seconds(30), interval: .milliseconds(20)) {
            try await kube.rolloutPending("Deployment", name: "web", namespace: "default")
        }
        #expect(try await kube.list("v1", "Pod", fieldSelector: "spec.nodeName=w1").count == 2, "workers first")
        try await kube.apply(["apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ["name": "web", "namespace": "default"],
                              "spec": ["minAvailable": 2, "selector": ["matchLabels": ["app": "web"]]]])
        try await Task.sleep(for: .milliseconds(100))
        do {
            try await kube.drain("w1", timeout: .seconds(1), interval: .milliseconds(50))
            Issue.record("a drain went through a budget that allows no disruption")
        } catch let timeout as KubeWaitTimeout {
            #expect(timeout.pending.contains("disruption budget"), "\(timeout)")
        }
        #expect(try await kube.list("v1", "Pod", fieldSelector: "spec.nodeName=w1").count == 2, "nothing was evicted")
        let cordoned = try await lab.kubectl(["get", "node", "w1"])
        #expect(cordoned.stdout.contains("SchedulingDisabled"), "\(cordoned.stdout)")

        try await kube.apply(["apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": ["name": "web", "namespace": "default"],
                              "spec": ["minAvailable": 1, "selector": ["matchLabels": ["app": "web"]]]])
        let evicted = try await kube.drain("w1", timeout: .seconds(30), interval: .milliseconds(50))
        #expect(evicted.count == 2, "\(evicted)")
        #expect(try await kube.list("v1", "Pod", fieldSelector: "spec.nodeName=w1").isEmpty)
        #expect(try await kube.list("v1", "Pod", labelSelector: "app=web").count == 2, "replaced on another node, one at a time")
        // The machine goes away, then its Node object (a running kubelet would register it again).
        await lab.fixture.node("w1").powerOff()
        #expect(try await kube.deleteNode("w1"))
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await kube.get("v1", "Node", name: "w1") == nil)
    }
}
