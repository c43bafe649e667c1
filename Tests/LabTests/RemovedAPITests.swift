import Foundation
import KubeKit
import Testing
import TestSupport
@testable import Lab
@testable import ProvisionCore
@testable import Steps

/// The Kubernetes upgrade's check for API versions the target removes, against the lab's API
/// serving one (as a CRD, the way an old add-on leaves a group version behind).
@Suite struct RemovedAPITests {
    @Test(.timeLimit(.minutes(2))) func objectsOfAVersionTheTargetRemovesAreNamed() async throws {
        let lab = try await KubeLab(nodes: ["cp1"])
        defer { Task { await lab.stop() } }
        let kube = try KubeClient(config: lab.kubeconfig)
        defer { Task { await kube.shutdown() } }
        let manifest = """
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: flowschemas.flowcontrol.apiserver.k8s.io}
            spec:
              group: flowcontrol.apiserver.k8s.io
              scope: Cluster
              names: {kind: FlowSchema, plural: flowschemas, singular: flowschema}
              versions:
                - {name: v1beta3, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
            """
        try await kube.apply(manifest: try Manifest.documents(manifest), timeout: .seconds(30))
        let (inventory, _) = try InventoryParser.load(path: repositoryRoot + "/inventories/demo.yaml")
        let redactor = Redactor()
        let access = KubeAccess(stateDirectory: URL(fileURLWithPath: lab.kubeconfigPath).deletingLastPathComponent().path)
        defer { Task { await access.close() } }
        var services = Services()
        services[KubeAccess.self] = access
        let context = StepContext(inventory: inventory, stateDirectory: temporaryDirectory(), runID: "t",
                                  credentials: CredentialResolver(environment: [:], baseDirectory: inventory.directory, redactor: redactor),
                                  events: EventBus(redactor: redactor, sinks: []), services: services)
        #expect(await KubernetesSurvey.removedAPIsInUse(context, from: "v1.31.4", to: "v1.32.0").isEmpty, "served, but nothing stored in it")
        try await kube.apply(["apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema", "metadata": ["name": "legacy"], "spec": [:]])
        let problems = await KubernetesSurvey.removedAPIsInUse(context, from: "v1.31.4", to: "v1.32.0")
        #expect(problems.count == 1 && problems[0].contains("1 flowschemas") && problems[0].contains("flowcontrol.apiserver.k8s.io/v1beta3"), "\(problems)")
        #expect(await KubernetesSurvey.removedAPIsInUse(context, from: "v1.32.0", to: "v1.33.0").isEmpty, "removed before: not this hop's")
    }
}
