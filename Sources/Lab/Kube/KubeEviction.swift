import KubeKit

/// The Eviction subresource: a pod is deleted unless a PodDisruptionBudget that selects it allows
/// no disruption now, which is 429 TooManyRequests (clients retry), as kube-apiserver answers.
enum KubeEviction {
    static func evict(store: KubeStore, namespace: String, pod name: String) async throws(APIFailure) -> JSON {
        let pods = KubeResourceCatalog.builtIn.first { $0.kind == "Pod" }!
        let budgets = KubeResourceCatalog.builtIn.first { $0.kind == "PodDisruptionBudget" }!
        let pod = try await store.get(pods, namespace: namespace, name: name)
        let labels = pod[path: "metadata.labels"]?.object ?? [:]
        for budget in try await store.list(budgets, namespace: namespace)["items"]?.array ?? [] {
            let selector = budget[path: "spec.selector.matchLabels"]?.object ?? [:]
            guard !selector.isEmpty, selector.allSatisfy({ labels[$0.key] == $0.value }) else { continue }
            if (budget[path: "status.disruptionsAllowed"]?.int ?? 0) < 1 {
                throw APIFailure(code: 429, reason: "TooManyRequests",
                                 message: "Cannot evict pod as it would violate the pod's disruption budget \(budget.name).")
            }
        }
        _ = try await store.delete(pods, namespace: namespace, name: name)
        return .object(["kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": .object([:])])
    }
}
