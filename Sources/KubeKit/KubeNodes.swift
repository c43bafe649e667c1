import Foundation

/// Taking a node out of service the way `kubectl drain` does: cordon, evict (PodDisruptionBudgets
/// are respected: a 429 means "not now" and is retried), then delete the Node object.
extension KubeClient {
    public func cordon(_ node: String, _ unschedulable: Bool = true) async throws {
        _ = try await send(.PATCH, "/api/v1/nodes/\(node)", body: .object(["spec": .object(["unschedulable": .bool(unschedulable)])]),
                           contentType: "application/merge-patch+json")
    }

    /// Evicts every pod on the node except DaemonSet-owned and mirror (static) pods, retrying while a
    /// PodDisruptionBudget refuses, until `timeout`. Returns the pods evicted.
    @discardableResult
    public func drain(_ node: String, timeout: Duration, interval: Duration = .seconds(1)) async throws -> [String] {
        try await cordon(node)
        var evicted: [String] = []
        try await wait(for: "\(node) to drain", timeout: timeout, interval: interval) {
            let pods = try await list("v1", "Pod", fieldSelector: "spec.nodeName=\(node)").filter(Self.evictable)
            if pods.isEmpty { return nil }
            var blocked: [String] = []
            for pod in pods {
                let namespace = pod.namespace ?? "default"
                let eviction: JSON = .object([
                    "apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": .object(["name": .string(pod.name), "namespace": .string(namespace)]),
                ])
                let (status, reply) = try await raw(.POST, "/api/v1/namespaces/\(namespace)/pods/\(pod.name)/eviction", body: eviction)
                switch status {
                case 200..<300: evicted.append("\(namespace)/\(pod.name)")
                case 404: continue
                case 429: blocked.append("\(namespace)/\(pod.name) (\(reply["message"]?.string ?? "disruption budget"))")
                default:
                    throw KubeError(status: status, reason: reply["reason"]?.string ?? "", message: reply["message"]?.string ?? "eviction failed",
                                    operation: "evict \(namespace)/\(pod.name)")
                }
            }
            return blocked.isEmpty ? "waiting for evicted pods to go" : "eviction refused for " + blocked.joined(separator: ", ")
        }
        return evicted
    }

    public static func evictable(_ pod: JSON) -> Bool {
        if pod[path: "metadata.annotations"]?["kubernetes.io/config.mirror"] != nil { return false }
        let owners = pod[path: "metadata.ownerReferences"]?.array ?? []
        return !owners.contains { $0["kind"]?.string == "DaemonSet" }
    }

    @discardableResult
    public func deleteNode(_ node: String) async throws -> Bool {
        try await delete("v1", "Node", name: node)
    }
}
