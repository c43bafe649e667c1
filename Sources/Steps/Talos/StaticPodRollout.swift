import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// After a live config change on a control plane: which static pods Talos re-rendered (the config
/// resources whose COSI version moved) and the wait until each runs on this node with the new
/// version and is Ready, as `talosctl upgrade-k8s` waits (talos v1.13.9 `talos_managed.go`
/// checkPodStatus: the pod's `talos.dev/config-version`, then PodReady).
struct StaticPodRollout {
    let node: String
    let step: StepInstance
    let context: StepContext

    var access: TalosAccess { TalosAccess.from(context) }

    func wait(since before: StaticPodVersions) async throws {
        let client = try await access.client(node, .admin)
        // Talos' controllers write the new versions moments after the apply answers.
        var waits: [(pod: String, annotation: String, value: String)] = []
        let settle = ContinuousClock.now + access.scaled(.seconds(3), floor: .milliseconds(300))
        repeat {
            if let now = try? await client.staticPodVersions() { waits = now.waits(since: before) }
            if !waits.isEmpty { break }
            try await Task.sleep(for: access.pollInterval)
        } while ContinuousClock.now < settle
        guard !waits.isEmpty else { return }
        guard let kube = try? KubeAccess.from(context).kube() else {
            context.log("\(node): its static pods restart for this change; no Kubernetes API to watch them", level: .warning, step: step)
            return
        }
        let hostname = context.inventory.node(named: node)?.hostname ?? node
        let pods = Set(waits.map(\.pod)).sorted()
        context.log("\(node): the change restarts \(pods.joined(separator: ", ")); waiting for them before the next control plane", step: step)
        for pod in pods {
            let wanted = waits.filter { $0.pod == pod }
            let name = "\(pod)-\(hostname)"
            try await kube.wait(for: "\(pod) on \(node) to run the new config and be Ready", timeout: access.scaled(.seconds(300)),
                                interval: access.pollInterval, watching: .object("v1", "Pod", name: name, namespace: "kube-system")) {
                guard let object = try await kube.get("v1", "Pod", name: name, namespace: "kube-system") else { return "no pod \(name)" }
                for wait in wanted {
                    let now = object[path: "metadata.annotations"]?[wait.annotation]?.string ?? "none"
                    if now != wait.value { return "\(wait.annotation) is \(now), not \(wait.value) yet" }
                }
                return object.condition("Ready") == "True" ? nil : "pod not Ready"
            }
        }
        context.log("\(node): \(pods.joined(separator: ", ")) run the new config and are Ready", step: step)
    }
}
