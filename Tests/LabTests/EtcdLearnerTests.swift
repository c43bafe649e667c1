import Foundation
import KubeKit
import Testing
import TestSupport
@testable import Lab
@testable import ProvisionCore
@testable import Steps
@testable import TalosKit

/// Talos adds a joining control plane to etcd as a learner and promotes it once etcd lets it (talos
/// v1.13.9 `system/services/etcd.go`): the etcd gate treats a learner as a member still joining, so
/// a gated reboot waits for the promotion before it takes another control plane down.
@Suite struct EtcdLearnerTests {
    @Test(.timeLimit(.minutes(4))) func aJoiningControlPlaneIsALearnerUntilPromotedAndAGatedRebootWaitsForIt() async throws {
        var lab = try TalosLab(nodes: ["cp1", "cp2", "cp3"])
        await lab.cluster.powerOnAll()
        // The lab's Kubernetes API at the VIP: a gated reboot cordons and drains first.
        let api = try await lab.kubeAPI()
        defer { Task { await api.stop() } }
        let up = try await lab.run()
        #expect(up.succeeded, "\(up.errors)")
        // A CNI's DaemonSet, so the Nodes turn Ready (a gated reboot ends waiting for its Node).
        let client = try KubeClient(config: try Kubeconfig.load(path: "\(lab.state)/kubeconfig"))
        defer { Task { await client.shutdown() } }
        _ = try await client.apply(.object(["apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": .object(["name": "kube-flannel", "namespace": "kube-system"]),
                                            "spec": .object(["selector": .object(["matchLabels": .object(["app": "flannel"])])])]))
        let promoted = lab.cluster.record.entries.filter { $0.event == "etcd-promoted" }.compactMap(\.node)
        #expect(Set(promoted) == ["cp2", "cp3"], "the two that joined were learners, then promoted: \(promoted)")

        // cp3 leaves (a graceful reset) and joins again, as a learner that etcd does not promote yet.
        await lab.cluster.etcd.holdPromotions(true)
        let reset = """
            apiVersion: provision/v1
            kind: Playbook
            name: reset
            steps:
              - {id: reset, uses: talos.reset, forEach: "name=cp3", timeout: 60s}
            """
        #expect(try await lab.run(reset).succeeded)
        #expect(try await lab.run(TalosLab.upToConfigured).succeeded)
        let members = try await lab.admin("cp1").etcdMembers()
        #expect(members.first { $0.hostname == "cp3" }?.isLearner == true, "\(members.map { "\($0.hostname) \($0.isLearner)" })")

        // A change that needs a reboot, for cp1: staged by apply-config, then the gated reboot.
        let udev = try YAMLLoader().load(text: "machine: {udev: {rules: ['SUBSYSTEM==\"drm\", GROUP=\"44\"']}}", file: "patch")
        let index = try #require(lab.inventory.nodes.firstIndex { $0.name.value == "cp1" })
        lab.inventory.nodes[index].patches = [udev]
        let reboot = """
            apiVersion: provision/v1
            kind: Playbook
            name: reboot
            steps:
              - {id: apply-config, uses: talos.apply-config, forEach: "name=cp1"}
              - {id: reboot, uses: talos.reboot, forEach: "name=cp1", needs: [apply-config], timeout: 60s}
            """
        let etcd = lab.cluster.etcd
        let sink = CollectingSink()
        // etcd lets the learner catch up only once the gate is seen waiting for it (however slow the machine).
        let released = Task {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, !sink.all.contains(where: { ($0.message ?? "").contains("etcd member cp3 is still a learner") }) {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(500))
            let at = LabRecord.now()
            await etcd.holdPromotions(false)
            return at
        }
        let run = try await lab.run(reboot, sinks: [sink])
        #expect(run.succeeded, "\(run.errors)")
        #expect(sink.all.contains { ($0.message ?? "").contains("etcd member cp3 is still a learner (joining)") }, "the gate said what it waited for")
        let releasedAt = try await released.value
        let entries = lab.cluster.record.entries
        let promotedAt = try #require(entries.last { $0.event == "etcd-promoted" && $0.node == "cp3" }?.t)
        let rebootAt = try #require(entries.first { $0.node == "cp1" && $0.event == "stage" && $0.stage == "rebooting" }?.t)
        #expect(promotedAt >= releasedAt, "promoted only once etcd let it")
        #expect(rebootAt >= promotedAt, "cp1 went down only after cp3 was a voting member")
    }
}
