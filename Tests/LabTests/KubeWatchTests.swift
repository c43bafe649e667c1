import Foundation
import KubeKit
import ProvisionCore
import Testing
import TestSupport
@testable import Lab

/// Watches on the lab's Kubernetes API, proven with the real kubectl (whose `wait` lists and then
/// watches), and provision's waits on them: a wait looks again the moment what it watches changes,
/// not at its next poll.
@Suite struct KubeWatchTests {
    /// `kubectl wait` holds a watch open and returns when the change arrives; without watches it
    /// would time out (the lab answering a watch with a list is not an event stream).
    @Test(.timeLimit(.minutes(2))) func kubectlWaitAndGetWatchSeeChangesAsTheyHappen() async throws {
        let lab = try await KubeLab()
        defer { Task { await lab.stop() } }
        #expect(try await lab.kubectl(["create", "configmap", "c1", "--from-literal=k=v1"]).status == 0)
        async let waited = lab.kubectl(["wait", "--for=jsonpath={.data.k}=v2", "configmap/c1", "--timeout=30s"])
        async let created = lab.kubectl(["wait", "--for=create", "configmap/late", "--timeout=30s"])
        try await Task.sleep(for: .seconds(2))
        let changed = ContinuousClock.now
        #expect(try await lab.kubectl(["patch", "configmap", "c1", "--type=merge", "-p", #"{"data":{"k":"v2"}}"#]).status == 0)
        #expect(try await lab.kubectl(["create", "configmap", "late", "--from-literal=a=b"]).status == 0)
        let (first, second) = try await (waited, created)
        #expect(first.status == 0 && first.stdout.contains("condition met"), "\(first.stdout)\(first.stderr)")
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(ContinuousClock.now - changed < .seconds(10), "returned on the change, not at the 30 s timeout")

        // `kubectl get -w` prints what the list held, then each event as the watch streams it.
        let watched = try await lab.kubectl(["get", "configmaps", "-w", "-o", "name", "--request-timeout=4s"], background: {
            try await Task.sleep(for: .seconds(2))
            _ = try await lab.kubectl(["create", "configmap", "streamed", "--from-literal=a=b"])
        })
        let lines = watched.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("configmap/c1") && lines.last == "configmap/streamed", "\(watched.stdout)\(watched.stderr)")
    }

    /// A watch from a revision older than the retained window gets one ERROR event, 410 Expired,
    /// as kube-apiserver answers it (the client lists again); our watch reports it as an error.
    @Test(.timeLimit(.minutes(2))) func aWatchFromTooOldARevisionIsExpired() async throws {
        let lab = try await KubeLab()
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        _ = try await kube.list("v1", "ConfigMap", namespace: "lab-load")
        _ = await lab.api.store.load(namespace: "lab-load", count: KubeWatches.window + 10, bytes: 8)
        let raw = try await lab.kubectl(["get", "--raw", "/api/v1/namespaces/lab-load/configmaps?watch=true&resourceVersion=1001&timeoutSeconds=2"])
        #expect(raw.stdout.contains(#""type":"ERROR""#) && raw.stdout.contains("410") && raw.stdout.contains("too old resource version"), "\(raw.stdout.prefix(400))\(raw.stderr)")
        await #expect(throws: KubeError.self) { _ = try await kube.watch(.all("v1", "ConfigMap", namespace: "lab-load"), within: .seconds(2)) }
        // A fresh look starts a watch that works again.
        _ = try await kube.list("v1", "ConfigMap", namespace: "lab-load")
        #expect(try await kube.watch(.all("v1", "ConfigMap", namespace: "lab-load"), within: .seconds(1)) == false, "nothing changed since the look")
    }

    /// A wait on an object sees its change at once (well under a second), though its poll interval is 10 s:
    /// it looked three times at most (polling at that interval would have looked after about 2 s
    /// and then every few seconds). A wait on an object that does not exist yet wakes on its creation.
    @Test(.timeLimit(.minutes(4))) func aWaitLooksAgainAtTheChangeItWatches() async throws {
        try await QuietMachine.exclusive { try await waitLooksAgainAtTheChangeItWatches() }
    }

    func waitLooksAgainAtTheChangeItWatches() async throws {
        let lab = try await KubeLab()
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        #expect(try await lab.kubectl(["create", "configmap", "c1", "--from-literal=k=v1"]).status == 0)
        let before = await lab.api.requests.count
        let changer = Task {
            try await Task.sleep(for: .seconds(3))
            _ = try await lab.kubectl(["patch", "configmap", "c1", "--type=merge", "-p", #"{"data":{"k":"v2"}}"#])
            return ContinuousClock.now
        }
        try await kube.wait(for: "c1 to say v2", timeout: .seconds(30), interval: .seconds(10), watching: .object("v1", "ConfigMap", name: "c1", namespace: "default")) {
            try await kube.get("v1", "ConfigMap", name: "c1", namespace: "default")?[path: "data.k"]?.string == "v2" ? nil : "not yet"
        }
        let reaction = ContinuousClock.now - (try await changer.value)
        // Polling alone would have seen it about 3 s late (looks at about 2 s, then 6 s); the bound
        // leaves room for a loaded CI machine, where kubectl's own exit lags.
        #expect(reaction < .milliseconds(1500), "\(reaction)")
        let looks = await lab.api.requests.dropFirst(before).filter { $0.method == "GET" && $0.path == "/api/v1/namespaces/default/configmaps/c1" }
        #expect(looks.count <= 3, "\(looks.count) looks")

        let creator = Task {
            try await Task.sleep(for: .seconds(2))
            _ = try await lab.kubectl(["create", "configmap", "later", "--from-literal=a=b"])
            return ContinuousClock.now
        }
        try await kube.wait(for: "later to exist", timeout: .seconds(30), interval: .seconds(10), watching: .object("v1", "ConfigMap", name: "later", namespace: "default")) {
            try await kube.get("v1", "ConfigMap", name: "later", namespace: "default") == nil ? "absent" : nil
        }
        #expect(ContinuousClock.now - (try await creator.value) < .milliseconds(500))
        // Every watch ends with its wait, well before its 5 s span: the client hangs up (not
        // waiting for TLS' close_notify), the lab forgets the watcher, and shutdown is immediate.
        _ = try await eventually(timeout: .seconds(1)) { () async throws -> Bool in
            guard await lab.api.store.watches.watching == 0 else { throw PeerError("watches still open") }
            return true
        }
        let closing = ContinuousClock.now
        await kube.shutdown()
        #expect(ContinuousClock.now - closing < .milliseconds(500))
    }
}
