import Foundation
import KubeKit

/// The lab cluster's control loops, one pass per tick: kubelets register Nodes for configured
/// Talos machines (NotReady until a CNI DaemonSet has rolled out), CRDs become Established,
/// DaemonSets, Deployments and Jobs finish after a (time-scaled) delay, Services get endpoints from
/// the workloads they select, PodDisruptionBudgets count, and a 1Password ClusterSecretStore turns
/// Ready once the Connect credentials and token are well formed.
actor KubeController {
    let store: KubeStore
    let directory: SimulatedDirectory
    let kubernetesVersion: String
    let timeScale: Double
    /// When each object was first seen at its current generation (uid/generation), for rollout delays.
    private var seen: [String: ContinuousClock.Instant] = [:]
    private var podCounter = 0

    static let rollout = 6.0
    static let crdEstablish = 1.0
    static let job = 10.0

    init(store: KubeStore, directory: SimulatedDirectory, kubernetesVersion: String, timeScale: Double) {
        self.store = store
        self.directory = directory
        self.kubernetesVersion = kubernetesVersion
        self.timeScale = timeScale
    }

    func resource(_ kind: String) -> ServedResource { KubeResourceCatalog.builtIn.first { $0.kind == kind }! }

    /// True once `object` has been at its generation for `seconds` of lab time.
    func settled(_ object: JSON, after seconds: Double) -> Bool {
        let id = "\(object[path: "metadata.uid"]?.string ?? object.name)/\(object[path: "metadata.generation"]?.int ?? 0)"
        let now = ContinuousClock.now
        let first = seen[id] ?? now
        seen[id] = first
        return now - first >= .milliseconds(Int(seconds * timeScale * 1000))
    }

    func tick() async {
        await nodes()
        await staticPods()
        await crds()
        await workloads()
        await endpoints()
        await budgets()
        await secretStores()
    }

    // MARK: Nodes

    func cniReady() async -> Bool {
        await store.all(group: "apps", plural: "daemonsets").contains { ds in
            ds.namespace == "kube-system" && ["cilium", "kube-flannel", "calico-node"].contains(ds.name)
                && (ds[path: "status.numberAvailable"]?.int ?? 0) > 0
                && ds[path: "status.numberAvailable"]?.int == ds[path: "status.desiredNumberScheduled"]?.int
        }
    }

    func nodes() async {
        let cni = await cniReady()
        let existing = Dictionary(uniqueKeysWithValues: await store.all(group: "", plural: "nodes").map { ($0.name, $0) })
        for machine in await directory.all {
            guard let kubelet = await machine.kubelet else { continue }
            let registered = existing[kubelet.hostname]
            guard kubelet.running || registered != nil else { continue }
            var node = registered ?? Self.newNode(kubelet.hostname, address: machine.spec.address, controlPlane: kubelet.controlPlane,
                                                  kubernetesVersion: kubelet.version ?? kubernetesVersion, talosVersion: kubelet.talosVersion)
            // A kubelet reports the version it runs and the OS it runs on, each time it posts status.
            if kubelet.running {
                node.set("status.nodeInfo.kubeletVersion", .string(kubelet.version ?? kubernetesVersion))
                node.set("status.nodeInfo.osImage", .string("Talos (\(kubelet.talosVersion))"))
            }
            let (status, reason, message): (String, String, String)
            if !kubelet.running {
                (status, reason, message) = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
            } else if cni {
                (status, reason, message) = ("True", "KubeletReady", "kubelet is posting ready status")
            } else {
                (status, reason, message) = ("False", "KubeletNotReady",
                                             "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")
            }
            // Talos keeps the config's node labels on the Node, on registration and after.
            if !kubelet.labels.isEmpty {
                let labels = (node[path: "metadata.labels"]?.object ?? [:]).merging(kubelet.labels.mapValues { JSON.string($0) }) { $1 }
                node.set("metadata.labels", .object(labels))
            }
            let previous = node.condition("Ready")
            let now = KubeStore.timestamp(Date())
            let transition = previous == status ? (node[path: "status.conditions"]?.array?.first?["lastTransitionTime"] ?? .string(now)) : .string(now)
            node.set("status.conditions", .array([.object(["type": "Ready", "status": .string(status), "reason": .string(reason),
                                                           "message": .string(message), "lastTransitionTime": transition])]))
            await store.controllerWrite(resource("Node"), node)
            // When a Node turned Ready, for benchmarks that measure how long waits took to notice.
            if previous != status, status == "True" { directory.record.note(node.name, "node-ready", detail: "Kubernetes Node Ready") }
        }
    }

    /// A control plane's static pods, mirrored into kube-system as the kubelet does: the image its
    /// config names, Talos' version annotations, Ready once the component runs it.
    func staticPods() async {
        for machine in await directory.all {
            guard let kubelet = await machine.kubelet, kubelet.controlPlane else { continue }
            for component in await machine.componentStatus where component.name != "kubelet" {
                let versions = await machine.staticPodAnnotations(component.name)
                let name = "\(component.name)-\(kubelet.hostname)"
                let existing = try? await store.get(resource("Pod"), namespace: "kube-system", name: name)
                var pod = existing ?? .object(["apiVersion": "v1", "kind": "Pod", "metadata": .object([
                    "name": .string(name), "namespace": "kube-system",
                    "labels": .object(["k8s-app": .string(component.name), "tier": "control-plane"]),
                ])])
                var annotations: [String: JSON] = ["kubernetes.io/config.mirror": .string(name)]
                for (key, value) in versions { annotations[key] = .string(value) }
                pod.set("metadata.annotations", .object(annotations))
                pod.set("spec.nodeName", .string(kubelet.hostname))
                pod.set("spec.containers", .array([.object(["name": .string(component.name), "image": .string("registry.k8s.io/\(component.name):\(component.version)")])]))
                pod.set("status.phase", component.ready ? "Running" : "Pending")
                pod.set("status.conditions", .array([.object(["type": "Ready", "status": component.ready ? "True" : "False"])]))
                await store.controllerWrite(resource("Pod"), pod)
            }
        }
    }

    static func newNode(_ name: String, address: String, controlPlane: Bool, kubernetesVersion: String, talosVersion: String) -> JSON {
        var labels: [String: JSON] = ["kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"]
        if controlPlane { labels["node-role.kubernetes.io/control-plane"] = "" }
        var node: JSON = .object(["apiVersion": "v1", "kind": "Node", "metadata": .object(["name": .string(name), "labels": .object(labels)])])
        if controlPlane {
            node.set("spec.taints", .array([.object(["key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"])]))
        }
        node.set("status.addresses", .array([.object(["type": "InternalIP", "address": .string(address)]),
                                             .object(["type": "Hostname", "address": .string(name)])]))
        node.set("status.nodeInfo", .object(["kubeletVersion": .string(kubernetesVersion), "osImage": .string("Talos (\(talosVersion))"),
                                             "containerRuntimeVersion": "containerd://2.1.4", "operatingSystem": "linux", "architecture": "amd64"]))
        return node
    }

    // MARK: CRDs and workloads

    func crds() async {
        for var crd in await store.all(group: "apiextensions.k8s.io", plural: "customresourcedefinitions") where crd.condition("Established") != "True" {
            guard settled(crd, after: Self.crdEstablish) else { continue }
            let now = KubeStore.timestamp(Date())
            crd.set("status.conditions", .array(["NamesAccepted", "Established"].map {
                .object(["type": .string($0), "status": "True", "reason": .string($0 == "Established" ? "InitialNamesAccepted" : "NoConflicts"),
                         "lastTransitionTime": .string(now)])
            }))
            crd.set("status.acceptedNames", crd[path: "spec.names"] ?? .object([:]))
            await store.controllerWrite(resource("CustomResourceDefinition"), crd)
        }
    }

    func workloads() async {
        let nodes = await store.all(group: "", plural: "nodes")
        let readyNodes = nodes.filter { $0.condition("Ready") == "True" && $0[path: "spec.unschedulable"]?.bool != true }
        for var ds in await store.all(group: "apps", plural: "daemonsets") {
            let desired = nodes.filter { $0.condition("Ready") != "Unknown" }.count
            let done = desired > 0 && (Self.rolledOut(ds) || settled(ds, after: Self.rollout))
            let count = done ? desired : 0
            // A rolling update keeps the old pods serving until the new ones are up (nodes stay Ready);
            // only the updated count waits for the rollout.
            let serving = done ? desired : min(ds[path: "status.numberAvailable"]?.int ?? 0, desired)
            for (field, value) in [("desiredNumberScheduled", desired), ("currentNumberScheduled", serving), ("numberReady", serving),
                                   ("updatedNumberScheduled", count), ("numberAvailable", serving)] {
                ds.set("status.\(field)", .int(value))
            }
            let wasRolledOut = Self.rolledOut(ds)
            ds.set("status.observedGeneration", .int(done ? ds[path: "metadata.generation"]?.int ?? 1 : ds[path: "status.observedGeneration"]?.int ?? 0))
            await store.controllerWrite(resource("DaemonSet"), ds)
            if done, !wasRolledOut { ready("DaemonSet", ds) }
        }
        let crdsEstablished = await store.all(group: "apiextensions.k8s.io", plural: "customresourcedefinitions")
        for var deployment in await store.all(group: "apps", plural: "deployments") {
            let wanted = deployment[path: "spec.replicas"]?.int ?? 1
            // A webhook that serves CRD conversions cannot be ready before its CRDs are (ESO's is not).
            let needsCRDs = Self.labels(deployment).values.contains("external-secrets-webhook")
            let crdsReady = !needsCRDs || crdsEstablished.filter { $0[path: "spec.group"]?.string == "external-secrets.io" }
                .allSatisfy { $0.condition("Established") == "True" } && !crdsEstablished.isEmpty
            let done = !readyNodes.isEmpty && crdsReady && (Self.rolledOut(deployment) || settled(deployment, after: Self.rollout))
            let count = done ? min(wanted, await schedulePods(deployment, wanted: wanted, keepOn: nodes.filter { $0.condition("Ready") == "True" },
                                                              placeOn: readyNodes)) : 0
            let wasRolledOut = Self.rolledOut(deployment)
            for field in ["replicas", "readyReplicas", "availableReplicas", "updatedReplicas"] { deployment.set("status.\(field)", .int(count)) }
            deployment.set("status.observedGeneration", .int(done ? deployment[path: "metadata.generation"]?.int ?? 1 : 0))
            deployment.set("status.conditions", .array([.object(["type": "Available", "status": .string(done ? "True" : "False"),
                                                                  "reason": .string(done ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable")])]))
            await store.controllerWrite(resource("Deployment"), deployment)
            if done, count > 0, !wasRolledOut { ready("Deployment", deployment) }
        }
        for var job in await store.all(group: "batch", plural: "jobs") where job.condition("Complete") != "True" {
            guard !readyNodes.isEmpty || Self.hostNetwork(job), settled(job, after: Self.job) else { continue }
            // What the job installs is in place before the job reports Complete, as with a real installer.
            await KubeInstallers.completed(job, store: store)
            job.set("status.succeeded", .int(1))
            job.set("status.conditions", .array([.object(["type": "Complete", "status": "True"])]))
            await store.controllerWrite(resource("Job"), job)
            ready("Job", job)
        }
    }

    /// When a workload rolled out or a job completed, for benchmarks that measure how long the
    /// waits on them took to notice.
    func ready(_ kind: String, _ object: JSON) {
        directory.record.note("kubernetes", "kube-ready", detail: "\(kind) \(object.namespace ?? "")/\(object.name)")
    }

    /// Keeps `wanted` running pods of a Deployment, as its ReplicaSet would: pods stay on Ready nodes
    /// (cordoned too), and missing ones (evicted, or their node gone) are placed on schedulable
    /// nodes, workers first.
    func schedulePods(_ deployment: JSON, wanted: Int, keepOn: [JSON], placeOn nodes: [JSON]) async -> Int {
        let pods = resource("Pod"), namespace = deployment.namespace ?? "default"
        let owner = "deployment-\(deployment.name)"
        let nodeNames = Set(keepOn.map(\.name))
        var mine = (try? await store.list(pods, namespace: namespace, labelSelector: "provision.lab/owner=\(owner)"))?["items"]?.array ?? []
        for pod in mine where !nodeNames.contains(pod[path: "spec.nodeName"]?.string ?? "") {
            _ = try? await store.delete(pods, namespace: namespace, name: pod.name)
        }
        mine = mine.filter { nodeNames.contains($0[path: "spec.nodeName"]?.string ?? "") }
        let workers = nodes.filter { $0[path: "metadata.labels"]?["node-role.kubernetes.io/control-plane"] == nil }
        let targets = workers.isEmpty ? nodes : workers
        var index = mine.count
        while mine.count < wanted, !targets.isEmpty {
            podCounter += 1
            var labels = (deployment[path: "spec.template.metadata.labels"]?.object ?? [:])
            labels["provision.lab/owner"] = .string(owner)
            let pod: JSON = [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("\(deployment.name)-\(String(podCounter, radix: 16))"), "namespace": .string(namespace), "labels": .object(labels),
                             "ownerReferences": [["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string("\(deployment.name)-lab")]]],
                "spec": ["nodeName": .string(targets[index % targets.count].name), "containers": deployment[path: "spec.template.spec.containers"] ?? []],
                "status": ["phase": "Running", "conditions": [["type": "Ready", "status": "True"]], "podIP": .string("10.244.1.\(podCounter % 250)")],
            ]
            await store.controllerWrite(pods, pod)
            mine.append(pod)
            index += 1
        }
        return mine.count
    }

    /// A workload that finished rolling out at its current generation stays rolled out (a lab
    /// restored by the next command must not replay its rollouts).
    static func rolledOut(_ workload: JSON) -> Bool {
        let generation = workload[path: "metadata.generation"]?.int ?? 1
        let available = workload[path: "status.numberAvailable"]?.int ?? workload[path: "status.availableReplicas"]?.int ?? 0
        return workload[path: "status.observedGeneration"]?.int == generation && available > 0
    }

    static func labels(_ workload: JSON) -> [String: String] {
        (workload[path: "spec.template.metadata.labels"]?.object ?? [:]).compactMapValues(\.string)
    }

    /// Whether a label selector picks a workload's pods.
    static func selects(_ selector: [String: String], _ workload: JSON) -> Bool {
        let labels = labels(workload)
        return selector.allSatisfy { labels[$0.key] == $0.value }
    }

    static func hostNetwork(_ workload: JSON) -> Bool { workload[path: "spec.template.spec.hostNetwork"]?.bool == true }

    // MARK: Services, budgets, secret stores

    func endpoints() async {
        let workloads = await store.all(group: "apps", plural: "deployments") + store.all(group: "apps", plural: "daemonsets")
        for service in await store.all(group: "", plural: "services") {
            guard let selector = service[path: "spec.selector"]?.object?.compactMapValues(\.string), !selector.isEmpty else { continue }
            let ready = workloads.filter { workload in
                workload.namespace == service.namespace && Self.selects(selector, workload)
                    && ((workload[path: "status.availableReplicas"]?.int ?? workload[path: "status.numberAvailable"]?.int) ?? 0) > 0
            }
            let ports = (service[path: "spec.ports"]?.array ?? []).map { port in
                JSON.object(["name": port["name"] ?? "", "port": port["targetPort"]?.int.map(JSON.int) ?? port["port"] ?? .int(80), "protocol": "TCP"])
            }
            let subsets: [JSON] = ready.isEmpty ? [] : [.object(["addresses": .array(ready.indices.map { .object(["ip": .string("10.244.0.\(10 + $0)")]) }),
                                                                 "ports": .array(ports)])]
            let endpoints: JSON = .object(["apiVersion": "v1", "kind": "Endpoints",
                                           "metadata": .object(["name": .string(service.name), "namespace": .string(service.namespace ?? "default")]),
                                           "subsets": .array(subsets)])
            var merged = (try? await store.get(resource("Endpoints"), namespace: service.namespace, name: service.name)) ?? endpoints
            merged["subsets"] = .array(subsets)
            await store.controllerWrite(resource("Endpoints"), merged)
        }
    }

    func budgets() async {
        for var budget in await store.all(group: "policy", plural: "poddisruptionbudgets") {
            let selector = budget[path: "spec.selector.matchLabels"]?.object?.compactMapValues(\.string) ?? [:]
            let healthy = await store.all(group: "", plural: "pods").filter { pod in
                pod.namespace == budget.namespace && pod[path: "status.phase"]?.string == "Running"
                    && selector.allSatisfy { pod[path: "metadata.labels"]?[$0.key]?.string == $0.value }
            }.count
            let minimum = budget[path: "spec.minAvailable"]?.int ?? max(0, healthy - (budget[path: "spec.maxUnavailable"]?.int ?? 1))
            budget.set("status.currentHealthy", .int(healthy))
            budget.set("status.desiredHealthy", .int(minimum))
            budget.set("status.disruptionsAllowed", .int(max(0, healthy - minimum)))
            await store.controllerWrite(resource("PodDisruptionBudget"), budget)
        }
    }

    func secretStores() async {
        guard let served = await store.served.first(where: { $0.group == "external-secrets.io" && $0.kind == "ClusterSecretStore" }) else { return }
        for var secretStore in await store.all(group: "external-secrets.io", plural: "clustersecretstores") {
            let problem = await OnePasswordCheck.problem(with: secretStore, store: store)
            let now = KubeStore.timestamp(Date())
            secretStore.set("status.conditions", .array([.object([
                "type": "Ready", "status": .string(problem == nil ? "True" : "False"),
                "reason": .string(problem == nil ? "Valid" : "InvalidProviderConfig"),
                "message": .string(problem ?? "store validated"), "lastTransitionTime": .string(now),
            ])]))
            secretStore.set("status.capabilities", "ReadOnly")
            await store.controllerWrite(served, secretStore)
        }
    }
}
