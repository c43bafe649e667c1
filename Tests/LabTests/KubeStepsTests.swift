import Foundation
import KubeKit
import Testing
import TestSupport
@testable import Lab
@testable import ProvisionCore
@testable import Steps

/// kube.cilium, kube.foundation and kube.verify through the real executor, on the demo inventory's
/// simulated nodes with the lab's Kubernetes API at the cluster endpoint.
@Suite struct KubeStepsTests {
    static let kubePlaybook = """
        apiVersion: provision/v1
        kind: Playbook
        name: kube
        steps:
          - {id: cilium, uses: kube.cilium, timeout: 120s}
          - {id: foundation, uses: kube.foundation, needs: [cilium], timeout: 120s}
          - {id: verify, uses: kube.verify, needs: [foundation], timeout: 120s}
        """

    /// The demo lab up to a kubeconfig, plus the Kubernetes API at the (moved) cluster endpoint.
    struct Cluster {
        var lab: TalosLab
        let api: LabKubeAPI
        let services: Services

        init(nodes: Set<String>? = ["cp1", "w1"], environment: [String: String] = [:], configure: (inout TalosLab) -> Void = { _ in }) async throws {
            var lab = try TalosLab(nodes: nodes)
            configure(&lab)
            await lab.cluster.powerOnAll()
            let bundle = try LabFixture.bundle.get()
            let endpoint = try #require(URL(string: lab.inventory.cluster.endpoint.value))
            api = try await LabKubeAPI(host: endpoint.host!, port: endpoint.port!, caPEM: KubeLab.pem(bundle.k8s.crt), caKeyPEM: KubeLab.pem(bundle.k8s.key),
                                       cluster: lab.cluster, kubernetesVersion: "v1.34.2", timeScale: 0)
            var services = Services()
            services[KubeAccess.self] = KubeAccess(stateDirectory: lab.state)
            self.services = services
            self.lab = lab
            let talos = try await lab.run(services: services)
            #expect(talos.succeeded, "\(talos.errors)")
        }

        func run(_ book: String = KubeStepsTests.kubePlaybook, sink: (any EventSink)? = nil) async throws -> RunSummary {
            try await lab.run(book, services: services, sinks: sink.map { [$0] } ?? [])
        }

        func stop() async {
            await services[KubeAccess.self]?.close()
            await api.stop()
        }
    }

    @Test(.timeLimit(.minutes(3))) func ciliumThenFoundationThenVerifyAndASecondRunChangesNothing() async throws {
        let cluster = try await Cluster()
        defer { Task { await cluster.stop() } }
        let kube = try KubeClient(config: try Kubeconfig.load(path: "\(cluster.lab.state)/kubeconfig"))
        defer { Task { await kube.shutdown() } }
        try await kube.wait(for: "nodes to register", timeout: .seconds(30), interval: .milliseconds(20)) {
            try await kube.list("v1", "Node").count == 2 ? nil : "registering"
        }
        #expect(try await kube.notReadyNodes(["cp1", "w1"]).count == 2, "NotReady before Cilium")
        let first = try await cluster.run()
        #expect(first.succeeded, "\(first.errors)")
        #expect(first.outcomes["cilium"] == .applied && first.outcomes["foundation"] == .applied, "\(first.outcomes)")
        #expect(try await kube.notReadyNodes(["cp1", "w1"]).isEmpty, "Cilium turned the NotReady nodes Ready")
        let installer = try await kube.list("batch/v1", "Job", namespace: "kube-system").first
        let command = installer?[path: "spec.template.spec.containers"]?.array?.first?["command"]?.array?.compactMap(\.string) ?? []
        #expect(command.contains("k8sServiceHost=localhost") && command.contains("k8sServicePort=7445"), "KubePrism: \(command)")
        #expect(command.contains("loadBalancer.acceleration=native"), "no Mac mini in this cluster: \(command)")
        let store = try await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: "onepassword")
        #expect(store?.condition("Ready") == "True")
        let credentials = try await kube.get("v1", "Secret", name: "onepassword-connect-credentials", namespace: "external-secrets")
        let once = try #require(credentials?[path: "data"]?["1password-credentials.json"]?.string.flatMap { Data(base64Encoded: $0) })
        let file = try #require(Data(base64Encoded: String(decoding: once, as: UTF8.self)))
        #expect(try JSON.parse(file)["deviceUuid"] != nil, "the credentials file is base64-encoded inside the Secret value")

        // The store went in only after the webhook had endpoints: the webhook never refused it.
        let refused = await cluster.api.requests.filter { $0.path.contains("clustersecretstores") && $0.status >= 500 }
        #expect(refused.isEmpty, "\(refused)")

        let second = try await cluster.run()
        #expect(second.outcomes.values.allSatisfy { $0 == .satisfied }, "\(second.outcomes)")
    }

    @Test(.timeLimit(.minutes(3))) func aMacMiniTurnsXDPAccelerationOff() async throws {
        let cluster = try await Cluster(nodes: ["cp1", "mini01"])
        defer { Task { await cluster.stop() } }
        let first = try await cluster.run()
        #expect(first.succeeded, "\(first.errors)")
        let kube = try KubeClient(config: try Kubeconfig.load(path: "\(cluster.lab.state)/kubeconfig"))
        defer { Task { await kube.shutdown() } }
        let job = try await kube.list("batch/v1", "Job", namespace: "kube-system").first
        let command = job?[path: "spec.template.spec.containers"]?.array?.first?["command"]?.array?.compactMap(\.string) ?? []
        #expect(command.contains("loadBalancer.acceleration=disabled"), "\(command)")
    }

    @Test(.timeLimit(.minutes(3))) func credentialsThatAreNotConnectJSONAreRefusedBeforeAnythingIsApplied() async throws {
        let bad = temporaryDirectory() + "/credentials.json"
        try PrivateFile.write(Array(#"{"verifier": {}, "version": "2"}"#.utf8), to: bad)
        let cluster = try await Cluster { lab in
            lab.inventory.foundation.credentials["credentials"]?.value = .file(bad)
        }
        defer { Task { await cluster.stop() } }
        let run = try await cluster.run(Self.foundationOnly)
        #expect(run.refused, "\(run.errors)")
        let message = run.errors["foundation"] ?? ""
        #expect(message.contains("lacks encCredentials, deviceUuid, uniqueKey") && message.contains("op connect server create"), "\(message)")
        #expect(await cluster.api.requests.filter { $0.method != "GET" }.isEmpty, "nothing was applied")
    }

    @Test(.timeLimit(.minutes(3))) func aMissingEnvironmentReferenceIsRefusedBeforeAnythingIsApplied() async throws {
        let cluster = try await Cluster { lab in
            lab.inventory.foundation.credentials["token"]?.value = .environment("PROVISION_TEST_UNSET_CONNECT_TOKEN")
        }
        defer { Task { await cluster.stop() } }
        let run = try await cluster.run(Self.foundationOnly)
        #expect(run.refused, "\(run.errors)")
        #expect(run.errors["foundation"]?.contains("PROVISION_TEST_UNSET_CONNECT_TOKEN") == true, "\(run.errors)")
        #expect(await cluster.api.requests.filter { $0.method != "GET" }.isEmpty, "nothing was applied")
    }

    @Test(.timeLimit(.minutes(3))) func connectCredentialsAndTokenAppearInNoLogEventOrJournalRow() async throws {
        let cluster = try await Cluster()
        defer { Task { await cluster.stop() } }
        let trace = try TraceLogSink(directory: "\(cluster.lab.state)/logs", runID: "secrets-check")
        let run = try await cluster.run(sink: trace)
        #expect(run.succeeded, "\(run.errors)")
        trace.flush()
        let credentials = try String(contentsOfFile: "\(repositoryRoot)/lab/onepassword-credentials.json", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let token = try String(contentsOfFile: "\(repositoryRoot)/lab/onepassword-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let needles = [token, b64(token), "labdemo00000000000000000000000", b64(credentials), b64(b64(credentials))]
        var searched = 0
        for case let file as String in FileManager.default.enumerator(atPath: cluster.lab.state)! where !file.hasSuffix("kubeconfig") {
            guard let data = FileManager.default.contents(atPath: "\(cluster.lab.state)/\(file)") else { continue }
            searched += 1
            let text = String(decoding: data, as: UTF8.self)
            for needle in needles { #expect(!text.contains(needle), "\(file) holds a foundation secret") }
        }
        #expect(searched >= 3, "the trace log, the journal and its WAL were searched")
        #expect(FileManager.default.fileExists(atPath: trace.path))
    }

    @Test(.timeLimit(.minutes(3))) func theStoreWaitsForTheWebhookAndIsNeverSentEarly() async throws {
        let cluster = try await Cluster()
        defer { Task { await cluster.stop() } }
        // No CNI: no node is Ready, so ESO's webhook never gets endpoints.
        let run = try await cluster.run(Self.foundationOnly.replacingOccurrences(of: "timeout: 120s", with: "timeout: 6s"))
        #expect(!run.succeeded)
        let writes = await cluster.api.requests.filter { $0.path.hasPrefix("/apis/external-secrets.io/") && $0.method != "GET" }
        #expect(writes.isEmpty, "the store was never sent while the webhook had no endpoints: \(writes)")
        #expect(await cluster.api.requests.contains { $0.path.hasSuffix("deployments/external-secrets-webhook") }, "it waited on the webhook")
    }

    @Test(.timeLimit(.minutes(3))) func aSinglyEncodedCredentialsSecretTurnsTheStoreNotReadyAndARerunRepairsIt() async throws {
        let cluster = try await Cluster()
        defer { Task { await cluster.stop() } }
        #expect(try await cluster.run().succeeded)
        let kube = try KubeClient(config: try Kubeconfig.load(path: "\(cluster.lab.state)/kubeconfig"))
        defer { Task { await kube.shutdown() } }
        let credentials = try String(contentsOfFile: "\(repositoryRoot)/lab/onepassword-credentials.json", encoding: .utf8)
        try await kube.apply(["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "onepassword-connect-credentials", "namespace": "external-secrets"],
                              "data": ["1password-credentials.json": .string(Data(credentials.utf8).base64EncodedString())]], fieldManager: "someone", force: true)
        try await kube.wait(for: "the store to notice", timeout: .seconds(20), interval: .milliseconds(20)) {
            let store = try await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: "onepassword")
            return store?.condition("Ready") == "False" ? nil : "still Ready"
        }
        let store = try await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: "onepassword")
        #expect(store?[path: "status.conditions"]?.array?.first?["message"]?.string?.contains("encoded once") == true, "\(String(describing: store))")
        let repair = try await cluster.run(Self.foundationOnly)
        #expect(repair.outcomes["foundation"] == .applied, "\(repair.outcomes) \(repair.errors)")
        #expect(try await kube.get("external-secrets.io/v1", "ClusterSecretStore", name: "onepassword")?.condition("Ready") == "True")
    }

    @Test(.timeLimit(.minutes(3))) func sopsAgeStoresTheAgeKeyInTheGitOpsNamespace() async throws {
        let key = temporaryDirectory() + "/age.key"
        let made = try await Subprocess.run(["age-keygen", "-o", key])
        #expect(made.status == 0, "\(made.stderr)")
        let cluster = try await Cluster { lab in
            let at = lab.inventory.foundation.kind.location
            lab.inventory.foundation = FoundationSpec(kind: Located(.sopsAge, at: at), credentials: ["key": Located(.file(key), at: at)],
                                                      namespace: Located("flux-system", at: at), vault: nil, externalSecretsVersion: nil, connectVersion: nil)
        }
        defer { Task { await cluster.stop() } }
        let run = try await cluster.run(Self.foundationOnly)
        #expect(run.succeeded, "\(run.errors)")
        let kube = try KubeClient(config: try Kubeconfig.load(path: "\(cluster.lab.state)/kubeconfig"))
        defer { Task { await kube.shutdown() } }
        let secret = try await kube.get("v1", "Secret", name: "sops-age", namespace: "flux-system")
        let stored = secret?[path: "data"]?["age.agekey"]?.string.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        let written = try String(contentsOfFile: key, encoding: .utf8)
        #expect(stored.map { $0 + "\n" } == written, "the identity file as age-keygen wrote it (the reference drops the final newline)")
        #expect(try await cluster.run(Self.foundationOnly).outcomes["foundation"] == .satisfied)
    }

    static let foundationOnly = """
        apiVersion: provision/v1
        kind: Playbook
        name: foundation
        steps:
          - {id: foundation, uses: kube.foundation, timeout: 120s}
        """
}
