import Foundation
import KubeKit

/// What an installer Job leaves behind when it completes. The cilium-cli image's `cilium install`
/// (the in-cluster route Talos documents when helm is not at hand) creates the agent DaemonSet and
/// the operator Deployment in kube-system; the lab records the values it was given on them.
enum KubeInstallers {
    static func completed(_ job: JSON, store: KubeStore) async {
        let containers = job[path: "spec.template.spec.containers"]?.array ?? []
        guard let installer = containers.first(where: { ($0["image"]?.string ?? "").contains("cilium-cli") }) else { return }
        let arguments = (installer["command"]?.array ?? []) + (installer["args"]?.array ?? [])
        let words = arguments.compactMap(\.string)
        guard words.contains("install") || words.contains("upgrade") else { return }
        let settings = words.enumerated().compactMap { index, word -> String? in
            word == "--set" && index + 1 < words.count ? words[index + 1] : (word.hasPrefix("--set=") ? String(word.dropFirst(6)) : nil)
        }
        let version = words.enumerated().first { $0.element == "--version" }.flatMap { words.indices.contains($0.offset + 1) ? words[$0.offset + 1] : nil } ?? ""
        let annotations: JSON = .object(["provision.lab/cilium-values": .string(settings.joined(separator: ",")),
                                         "provision.lab/cilium-version": .string(version)])
        func workload(_ kind: String, _ name: String, _ labels: [String: JSON]) -> JSON {
            .object(["apiVersion": "apps/v1", "kind": .string(kind),
                     "metadata": .object(["name": .string(name), "namespace": "kube-system", "labels": .object(labels), "annotations": annotations]),
                     "spec": .object(["selector": .object(["matchLabels": .object(labels)]),
                                      "template": .object(["metadata": .object(["labels": .object(labels)]),
                                                           "spec": .object(["hostNetwork": true, "containers": .array([.object([
                                                               "name": .string(name), "image": .string("quay.io/cilium/\(name == "cilium" ? "cilium" : "operator-generic"):\(version)"),
                                                           ])])])])])])
        }
        let apps = KubeResourceCatalog.builtIn
        let daemonSets = apps.first { $0.kind == "DaemonSet" }!, deployments = apps.first { $0.kind == "Deployment" }!
        // An upgrade changes the spec of what runs; its status (the pods serving now) carries over.
        func keepingStatus(_ object: JSON, of resource: ServedResource) async -> JSON {
            var object = object
            if let status = (try? await store.get(resource, namespace: "kube-system", name: object.name))?["status"] { object.set("status", status) }
            return object
        }
        await store.controllerWrite(daemonSets, await keepingStatus(workload("DaemonSet", "cilium", ["k8s-app": "cilium"]), of: daemonSets))
        var operatorDeployment = workload("Deployment", "cilium-operator", ["io.cilium/app": "operator", "name": "cilium-operator"])
        operatorDeployment.set("spec.replicas", .int(1))
        await store.controllerWrite(deployments, await keepingStatus(operatorDeployment, of: deployments))
    }
}
