import Foundation
import ProvisionCore

/// A wait that ran out of time, saying what it was still waiting for.
public struct KubeWaitTimeout: Error, CustomStringConvertible, Sendable {
    public let waitingFor: String
    public let pending: String
    public var description: String { "gave up waiting for \(waitingFor): \(pending)" }
}

extension KubeClient {
    /// Looks at `check` until it returns nil (done) or `timeout` passes; `check` returns what is
    /// still pending, which the timeout error repeats. Transient API errors count as pending.
    /// Between looks it watches `watching` (what `check` reads) and looks again at its first
    /// change; without it, or when the watch cannot be made, it polls: soon at first, then less
    /// often up to `interval` (`PollSchedule`).
    public func wait(for what: String, timeout: Duration, interval: Duration = .milliseconds(500), watching: KubeWatched? = nil,
                     _ check: () async throws -> String?) async throws {
        let wake = watching.map(wake)
        let deadline = ContinuousClock.now + timeout
        var pending = "no answer yet"
        var schedule = PollSchedule(cap: interval)
        while true {
            do {
                guard let still = try await check() else { return }
                pending = still
            } catch let error as KubeError where error.isTransient || error.notFound {
                pending = error.description
            }
            if ContinuousClock.now >= deadline { throw KubeWaitTimeout(waitingFor: what, pending: pending) }
            if let wake { await wake(schedule.next()) } else { try await Task.sleep(for: schedule.next()) }
            try Task.checkCancellation()
        }
    }

    public func waitForEstablished(crd name: String, timeout: Duration) async throws {
        try await wait(for: "CRD \(name) to be Established", timeout: timeout, watching: .object("apiextensions.k8s.io/v1", "CustomResourceDefinition", name: name)) {
            let crd = try await get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name: name)
            return crd?.condition("Established") == "True" ? nil : "not Established yet"
        }
    }

    /// The names of nodes that are not Ready (all nodes, or those in `names`), with a reason each.
    public func notReadyNodes(_ names: [String]? = nil) async throws -> [String] {
        let nodes = try await list("v1", "Node")
        var missing = Set(names ?? [])
        var notReady: [String] = []
        for node in nodes {
            missing.remove(node.name)
            if let names, !names.contains(node.name) { continue }
            if node.condition("Ready") != "True" {
                let message = node[path: "status.conditions"]?.array?.first { $0["type"]?.string == "Ready" }?["message"]?.string
                notReady.append(node.name + (message.map { " (\($0))" } ?? ""))
            }
        }
        notReady += missing.sorted().map { "\($0) (not registered)" }
        return notReady.sorted()
    }

    /// What a DaemonSet or Deployment rollout still waits for; nil when it is complete (observed the
    /// current generation, every replica updated and available).
    public func rolloutPending(_ kind: String, name: String, namespace: String) async throws -> String? {
        let apiVersion = "apps/v1"
        guard let object = try await get(apiVersion, kind, name: name, namespace: namespace) else { return "\(kind) \(namespace)/\(name) does not exist" }
        let generation = object[path: "metadata.generation"]?.int ?? 0
        let observed = object[path: "status.observedGeneration"]?.int ?? 0
        if observed < generation { return "\(name): generation \(generation) not observed yet" }
        if kind == "DaemonSet" {
            let desired = object[path: "status.desiredNumberScheduled"]?.int ?? 0
            let updated = object[path: "status.updatedNumberScheduled"]?.int ?? 0
            let available = object[path: "status.numberAvailable"]?.int ?? 0
            return desired > 0 && updated == desired && available == desired ? nil : "\(name): \(available)/\(desired) available, \(updated) updated"
        }
        let wanted = object[path: "spec.replicas"]?.int ?? 1
        let updated = object[path: "status.updatedReplicas"]?.int ?? 0
        let available = object[path: "status.availableReplicas"]?.int ?? 0
        return updated >= wanted && available >= wanted ? nil : "\(name): \(available)/\(wanted) available, \(updated) updated"
    }

    /// Whether a Service has ready endpoints (what a webhook needs before the API server can call it).
    public func endpointsReady(service: String, namespace: String) async throws -> Bool {
        guard let endpoints = try await get("v1", "Endpoints", name: service, namespace: namespace) else { return false }
        return endpoints["subsets"]?.array?.contains { !($0["addresses"]?.array ?? []).isEmpty } ?? false
    }
}
