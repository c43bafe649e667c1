import Foundation
import KubeKit
import ProvisionCore
import TalosKit

/// `kube.cilium`: installs Cilium with the in-cluster installer Job Talos documents (the cilium-cli
/// image on a control plane's host network, values from the inventory), waits for the agent
/// DaemonSet and operator to roll out and for every inventory node to turn Ready, then records
/// the values' fingerprint so a re-run with the same values changes nothing and new values run the
/// installer again (as `cilium upgrade`).
public struct KubeCilium: StepKind {
    public let info = StepKindInfo(name: "kube.cilium", summary: "install Cilium and wait for every node Ready",
                                   estimate: .seconds(120), scope: .cluster, defaultTimeout: .seconds(900))
    static let cliImage = "quay.io/cilium/cilium-cli:v0.18.7"
    static let record = "provision-cilium"

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let kube = try KubeAccess.from(context).kube()
        let values = CiliumValues(context.inventory)
        let recorded = try await kube.get("v1", "ConfigMap", name: Self.record, namespace: "kube-system")
        let version = context.inventory.cni.version?.value ?? "1.18.4"
        guard recorded?[path: "data.fingerprint"]?.string == values.fingerprint, recorded?[path: "data.version"]?.string == version else {
            guard let recorded else { return .pending("Cilium is not installed by provision yet") }
            let old = "version \(recorded[path: "data.version"]?.string ?? "?")\n" + (recorded[path: "data.values"]?.string ?? "") + "\n"
            let new = "version \(version)\n" + values.flags.joined(separator: "\n") + "\n"
            let reason = "Cilium's version or values changed: the installer runs again (`cilium upgrade`) and the rollout is waited for"
            context.plan(PlannedChange(node: nil, resource: "cilium", action: "update", reason: reason,
                                       diff: TextDiff.unified(old, new, oldName: "installed", newName: "inventory")), step: step)
            return .pending(reason)
        }
        if let pending = try await kube.rolloutPending("DaemonSet", name: "cilium", namespace: "kube-system") { return .pending(pending) }
        let notReady = try await kube.notReadyNodes(Self.nodeNames(context.inventory))
        guard notReady.isEmpty else { return .pending("not Ready: \(notReady.joined(separator: ", "))") }
        return .satisfied(["fingerprint": values.fingerprint])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let kube = try KubeAccess.from(context).kube()
        let values = CiliumValues(context.inventory)
        let interval = TalosAccess.from(context).pollInterval
        if let note = values.xdpOff { context.log(note, step: step) }
        let version = context.inventory.cni.version?.value ?? "1.18.4"
        let upgrade = try await kube.get("apps/v1", "DaemonSet", name: "cilium", namespace: "kube-system") != nil
        let job = "cilium-install-\(values.fingerprint.prefix(8))-\(version.replacingOccurrences(of: ".", with: "-"))"
        try await kube.apply(manifest: Self.installer(job: job, version: version, upgrade: upgrade, values: values))
        context.log("\(upgrade ? "upgrading" : "installing") Cilium \(version) with job kube-system/\(job)", step: step)

        try await kube.wait(for: "the Cilium installer job", timeout: .seconds(600), interval: interval,
                            watching: .object("batch/v1", "Job", name: job, namespace: "kube-system")) {
            guard let object = try await kube.get("batch/v1", "Job", name: job, namespace: "kube-system") else { return "job \(job) is gone" }
            if object.condition("Failed") == "True" {
                throw StepError.permanent("the Cilium installer job \(job) failed; `kubectl -n kube-system logs job/\(job)` shows why")
            }
            return object.condition("Complete") == "True" ? nil : "job \(job) is running"
        }
        for (kind, name) in [("DaemonSet", "cilium"), ("Deployment", "cilium-operator")] {
            try await kube.wait(for: "\(kind) \(name) to roll out", timeout: .seconds(600), interval: interval,
                                watching: .object("apps/v1", kind, name: name, namespace: "kube-system")) {
                try await kube.rolloutPending(kind, name: name, namespace: "kube-system")
            }
        }
        try await kube.wait(for: "every node to turn Ready", timeout: .seconds(600), interval: interval, watching: .all("v1", "Node")) {
            let notReady = try await kube.notReadyNodes(Self.nodeNames(context.inventory))
            return notReady.isEmpty ? nil : "not Ready: " + notReady.joined(separator: ", ")
        }
        try await kube.apply(["apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": ["name": .string(Self.record), "namespace": "kube-system"],
                              "data": ["fingerprint": .string(values.fingerprint), "version": .string(version),
                                       "values": .string(values.flags.joined(separator: "\n"))]])
        context.log("Cilium \(version) is running; every node is Ready", step: step)
        return ["version": version, "fingerprint": values.fingerprint]
    }

    static func nodeNames(_ inventory: Inventory) -> [String] { inventory.nodes.map(\.hostname) }

    /// The installer's ServiceAccount (cluster-admin, as `cilium install` needs) and its Job, pinned
    /// to a control plane and run on the host network against the local API server, because there
    /// is no pod network until it has done its work.
    static func installer(job: String, version: String, upgrade: Bool, values: CiliumValues) -> [JSON] {
        let command: [JSON] = ["cilium", upgrade ? "upgrade" : "install", "--version", .string(version)]
            + values.flags.flatMap { ["--set", JSON.string($0)] }
        let container: JSON = [
            "name": "cilium-install", "image": .string(cliImage), "command": .array(command),
            "env": [["name": "KUBERNETES_SERVICE_HOST", "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": "status.podIP"]]],
                    ["name": "KUBERNETES_SERVICE_PORT", "value": "6443"]],
        ]
        return [
            ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "cilium-install", "namespace": "kube-system"]],
            ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": ["name": "cilium-install"],
             "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"],
             "subjects": [["kind": "ServiceAccount", "name": "cilium-install", "namespace": "kube-system"]]],
            ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": .string(job), "namespace": "kube-system"],
             "spec": ["backoffLimit": 10, "template": [
                 "metadata": ["labels": ["app": "cilium-install"]],
                 "spec": ["restartPolicy": "OnFailure", "serviceAccountName": "cilium-install", "hostNetwork": true,
                          "tolerations": [["operator": "Exists"]],
                          "affinity": ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": [
                              ["matchExpressions": [["key": "node-role.kubernetes.io/control-plane", "operator": "Exists"]]],
                          ]]]],
                          "containers": [container]],
             ]]],
        ]
    }
}
