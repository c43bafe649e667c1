import Foundation
import ProvisionCore
import Testing
import TalosKit
import TestSupport

/// `provision upgrade` on the demo lab: the inventory raises Talos (the cluster to v1.13.9, the Mac
/// minis from their v1.12.6 pin too), and the lab's record judges the rollout over time.
@Suite(.serialized) struct UpgradeTests {
    static let controlPlanes = ["cp1", "cp2", "cp3"]
    static let nodes = controlPlanes + ["mini01", "mini02", "w1"]

    /// Boots an upgrade to v1.13.9 takes: the minis go through v1.12.11 first (the upgrade guide's
    /// path from v1.12.6), so two; everyone else one.
    static func hops(_ node: String) -> Int { node.hasPrefix("mini") ? 2 : 1 }

    func raise(_ project: DemoProject) throws {
        try project.edit { $0.replacingOccurrences(of: "talosVersion: v1.13.2", with: "talosVersion: v1.13.9")
            .replacingOccurrences(of: "talosVersion: v1.12.6", with: "talosVersion: v1.13.9") }
    }

    func statusNodes(_ project: DemoProject) async throws -> [[String: Any]] {
        project.json(try await project.run(["status", "demo", "--json"]))["nodes"] as? [[String: Any]] ?? []
    }

    func calls(_ record: LabRecordFile, since t: Int64, _ method: String) -> [String] {
        record.since(t).filter { $0.event == "call" && $0.method == method }.compactMap(\.node)
    }

    @Test(.timeLimit(.minutes(6))) func everyNodeIsUpgradedOnceControlPlanesOneAtATime() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            let schematics = Dictionary(uniqueKeysWithValues: try await statusNodes(project).compactMap { node in
                (node["name"] as? String).map { ($0, node["schematic"] as? String ?? "") }
            })
            try raise(project)
            let dry = try await project.run(["upgrade", "demo", "--dry-run"])
            #expect(dry.status == 2, "\(dry.stderr)")
            #expect(dry.stdout.contains("1. cp1 v1.13.2 -> v1.13.9") && dry.stdout.contains("mini01 v1.12.6 -> v1.12.11 -> v1.13.9") && dry.stdout.contains("legacy"), "\(dry.stdout)")
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect((project.json(plan)["advisories"] as? [Any])?.count == 6, "plan names the upgrade for every node: \(plan.stdout)")

            let start = LabRecordFile.now()
            let upgraded = try await project.run(["upgrade", "demo", "--yes"])
            #expect(upgraded.status == 0, "\(upgraded.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            for node in Self.nodes { #expect(record.boots(of: node, since: start) == Self.hops(node), "\(node) booted once per hop") }
            #expect(record.mostDownAtOnce(Self.controlPlanes, since: start) <= 1, "never two control planes down")
            #expect(!record.lostQuorum(since: start), "etcd never lost quorum")
            // The VIP's holder rebooted too: Talos hands the VIP to the next control plane in line
            // first, and the upgrade's Kubernetes calls went on against the new holder.
            let vip = record.since(start).filter { $0.event == "vip" }
            #expect(vip.contains { $0.detail?.hasPrefix("released") == true }, "the VIP was released by its holder: \(vip)")
            #expect(Set(vip.filter { $0.detail?.hasPrefix("holds") == true }.compactMap(\.node)).count >= 2, "the VIP moved: \(vip)")
            #expect(Set(calls(record, since: start, "MachineService/Upgrade")) == ["mini01", "mini02"], "the 1.12 minis took the legacy path")
            #expect(Set(calls(record, since: start, "LifecycleService/Upgrade")) == ["cp1", "cp2", "cp3", "w1"])
            let after = try await statusNodes(project)
            for node in after {
                let name = node["name"] as? String ?? ""
                #expect(node["talosVersion"] as? String == "v1.13.9", "\(name): \(node)")
                #expect(node["schematic"] as? String == schematics[name] && !(schematics[name] ?? "").isEmpty, "\(name) runs its schematic")
            }
            let again = try await project.run(["upgrade", "demo", "--yes"])
            #expect(again.status == 0 && again.stderr.contains("nothing to do"), "\(again.stderr)")
            // The minis' configs were re-rendered for 1.13 as part of their upgrade: nothing is left for `up`.
            let converged = try await project.run(["plan", "demo"])
            #expect(converged.status == 0, "\(converged.stdout)")
        }
    }

    @Test(.timeLimit(.minutes(5))) func aFallbackStopsTheRolloutAndIsNeverResent() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            try project.edit { $0.replacingOccurrences(of: "lab:\n  timeScale: 0.02\n", with: "lab:\n  timeScale: 0.02\n  faults:\n    - {node: cp2, fault: upgrade-fails-boot}\n") }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "talosVersion: v1.13.2", with: "talosVersion: v1.13.9") }
            let start = LabRecordFile.now()
            let first = try await project.run(["upgrade", "demo", "--yes"])
            #expect(first.status == 1, "\(first.stderr)")
            #expect(first.stderr.contains("fell back"), "the fallback is named: \(first.stderr)")
            var record = try LabRecordFile(stateDirectory: project.state)
            #expect(record.boots(of: "cp1", since: start) == 1 && record.boots(of: "cp2", since: start) == 1)
            #expect(record.boots(of: "cp3", since: start) == 0 && record.boots(of: "w1", since: start) == 0, "nothing after cp2 was touched")
            #expect(calls(record, since: start, "LifecycleService/Upgrade").filter { $0 == "cp3" }.isEmpty)

            let retried = LabRecordFile.now()
            let again = try await project.run(["upgrade", "demo", "--yes"])
            #expect(again.status == 1 && again.stderr.contains("--retry"), "a plain re-run says what to do: \(again.stderr)")
            record = try LabRecordFile(stateDirectory: project.state)
            #expect(calls(record, since: retried, "ImageService/Pull").isEmpty && calls(record, since: retried, "LifecycleService/Upgrade").isEmpty,
                    "nothing is resent to cp2, nothing sent to the rest")
            let versions = Dictionary(uniqueKeysWithValues: try await statusNodes(project).compactMap { node in
                (node["name"] as? String).map { ($0, node["talosVersion"] as? String ?? "") }
            })
            #expect(versions["cp1"] == "v1.13.9" && versions["cp2"] == "v1.13.2" && versions["cp3"] == "v1.13.2", "\(versions)")
        }
    }

    /// `kill -9` of `upgrade` at five points of the rollout, each followed by `upgrade`: the machines
    /// live on (a served lab) and every node ends on the target, upgraded once.
    @Test(.timeLimit(.minutes(8))) func killedAtFivePointsEveryNodeIsUpgradedOnce() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try raise(project)
            let start = LabRecordFile.now()
            let points: [(String, (String) -> Bool)] = [
                ("cp1 recorded", { $0.contains("upgrade-cp@cp1") && $0.contains("recorded\"") }),
                ("cp2 pulled", { $0.contains("upgrade-cp@cp2") && $0.contains("pulled") }),
                ("cp3 back", { $0.contains("cp3: back (boot") }),
                ("a mini sent", { $0.contains("legacy upgrade sent") }),
                ("w1 recorded", { $0.contains("upgrade-worker@w1") && $0.contains("recorded\"") }),
            ]
            var reached: [String] = []
            for (name, matches) in points {
                let run = try project.running(["upgrade", "demo", "--yes", "--json"])
                let hit = try await run.waitFor(timeout: .seconds(120)) { lines in lines.contains(where: matches) }
                run.signal(SIGKILL)
                _ = try? await run.finish(timeout: .seconds(30))
                if hit { reached.append(name) }
            }
            #expect(reached.count == points.count, "every run was killed at its point inside the rollout: \(reached)")
            let last = try await project.run(["upgrade", "demo", "--yes"])
            #expect(last.status == 0, "\(last.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            // One boot per hop: the minis go v1.12.6 -> v1.12.11 -> v1.13.9.
            for node in Self.nodes {
                #expect(record.boots(of: node, since: start) == Self.hops(node), "\(node) upgraded once per hop across the kills")
            }
            #expect(record.mostDownAtOnce(Self.controlPlanes, since: start) <= 1)
            #expect(!record.lostQuorum(since: start))
            for node in try await statusNodes(project) { #expect(node["talosVersion"] as? String == "v1.13.9", "\(node)") }
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// Kubernetes v1.34.2 -> v1.35.0 on a served lab (kubelets keep running between commands): the
    /// lab's record shows every kube-apiserver, then controller-manager, scheduler and kubelet, one
    /// component restarting at a time; the Nodes report the new kubelet; a GPU worker launched later
    /// joins at it. Two minors ahead is refused naming the one in between.
    @Test(.timeLimit(.minutes(6))) func kubernetesMovesOneComponentOnOneNodeAtATime() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "kubernetesVersion: v1.34.2", with: "kubernetesVersion: v1.36.0") }
            let skip = try await project.run(["upgrade", "demo", "--yes"])
            #expect(skip.status == 64 && skip.stderr.contains("skips v1.35") && skip.stderr.contains("nothing was touched"), "\(skip.stderr)")
            try project.edit { $0.replacingOccurrences(of: "kubernetesVersion: v1.36.0", with: "kubernetesVersion: v1.35.0") }
            let planned = try await project.run(["plan", "demo"])
            #expect(planned.status == 2 && planned.stdout.contains("provision upgrade demo --kubernetes-only"), "up never upgrades; plan names the command: \(planned.stdout)")

            let start = LabRecordFile.now()
            let upgraded = try await project.run(["upgrade", "demo", "--kubernetes-only", "--yes"])
            #expect(upgraded.status == 0, "\(upgraded.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            let events = record.since(start).filter { $0.event == "component" }
            let ready = events.filter { $0.stage == "ready" }
            // Each component's first restart, in order; a scheduler move also re-renders that node's
            // kube-apiserver (its config-file-version includes the scheduler's config, talos v1.13.9
            // render_config_static_pods.go), which restarts again then.
            var firsts: [String] = []
            for event in events where event.stage == "restarting" {
                let key = "\(event.node ?? "") \(event.method ?? "")"
                if !firsts.contains(key) { firsts.append(key) }
            }
            let rank = ["kube-apiserver": 0, "kube-controller-manager": 1, "kube-scheduler": 2, "kubelet": 3]
            let ranks = firsts.compactMap { rank[String($0.split(separator: " ").last ?? "")] }
            #expect(ranks == ranks.sorted() && ranks.count == 15, "apiserver, controller-manager, scheduler, kubelet in that order: \(firsts)")
            #expect(ready.filter { $0.method == "kubelet" }.compactMap(\.node) == ["cp1", "cp2", "cp3", "mini01", "mini02", "w1"], "kubelets last, control planes first")
            #expect(ready.allSatisfy { $0.detail == "v1.35.0" })
            let schedulerRestarts = events.filter { $0.method == "kube-apiserver" && $0.stage == "restarting" }.count
            #expect(schedulerRestarts == 6, "every kube-apiserver restarted at its own move and at its scheduler's: \(schedulerRestarts)")
            // Never two nodes with a component restarting at once: the next node waits for all.
            var restarting: [String: Int] = [:], most = 0
            for event in events {
                restarting[event.node ?? "", default: 0] += event.stage == "restarting" ? 1 : -1
                most = max(most, restarting.values.filter { $0 > 0 }.count)
            }
            #expect(most == 1, "one node at a time")
            #expect(record.boots(of: "cp1", since: start) == 0, "no reboot: NO_REBOOT config changes")

            let kubelets = try await project.kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}"])
            let versions = kubelets.stdout.split(separator: " ").map { $0.split(separator: "=").last.map(String.init) ?? "" }
            #expect(versions.count == 6 && versions.allSatisfy { $0 == "v1.35.0" }, "\(kubelets.stdout) \(kubelets.stderr)")
            let apiserver = try await project.kubectl(["get", "pod", "-n", "kube-system", "kube-apiserver-cp2", "-o", "jsonpath={.spec.containers[0].image}"])
            #expect(apiserver.stdout == "registry.k8s.io/kube-apiserver:v1.35.0", "\(apiserver.stdout) \(apiserver.stderr)")
            #expect(try await project.run(["plan", "demo"]).status == 0, "converged")

            let gpu = try await project.run(["gpu", "up", "demo/gpu", "--ttl", "1h"])
            #expect(gpu.status == 0, "\(gpu.stderr)")
            let worker = try await project.kubectl(["get", "nodes", "-l", "provision.dev/gpu-pool", "-o", "jsonpath={.items[*].status.nodeInfo.kubeletVersion}"])
            #expect(worker.stdout == "v1.35.0", "the GPU worker joins at the cluster's new version: \(worker.stdout) \(worker.stderr)")
            #expect(try await project.run(["gpu", "down", "demo/gpu", "--yes"]).status == 0)
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// `kill -9` in the middle of the Kubernetes part, then `upgrade` again: it resumes from the
    /// recorded per-node versions, restarts no component twice, and records the new version.
    @Test(.timeLimit(.minutes(6))) func killedDuringTheKubernetesPartItResumesWhereItStopped() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "kubernetesVersion: v1.34.2", with: "kubernetesVersion: v1.35.0") }
            let start = LabRecordFile.now()
            let run = try project.running(["upgrade", "demo", "--yes", "--json"])
            let hit = try await run.waitFor(timeout: .seconds(120)) { lines in lines.contains { $0.contains("cp2: kube-scheduler v1.34.2 -> v1.35.0 sent") } }
            run.signal(SIGKILL)
            _ = try? await run.finish(timeout: .seconds(30))
            #expect(hit, "killed inside the Kubernetes part")
            let midway = KubernetesVersions.load(stateDirectory: project.state)
            #expect(midway?.target == "v1.35.0" && midway?.version == "v1.34.2", "the rollout is recorded as under way: \(String(describing: midway))")
            let status = project.json(try await project.run(["status", "demo", "--json"]))["kubernetesVersion"] as? [String: Any]
            #expect(status?["upgradingTo"] as? String == "v1.35.0", "status says so: \(String(describing: status))")
            let resumed = try await project.run(["upgrade", "demo", "--yes"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            let restarts = record.since(start).filter { $0.event == "component" && $0.stage == "restarting" }.map { "\($0.node ?? "") \($0.method ?? "")" }
            // 15 moves, and each control plane's kube-apiserver once more at its scheduler's move.
            #expect(restarts.count == 18 && Set(restarts).count == 15, "every component restarted once on each node: \(restarts)")
            let finished = KubernetesVersions.load(stateDirectory: project.state)
            #expect(finished?.version == "v1.35.0" && finished?.target == nil && finished?.nodes.isEmpty == true, "\(String(describing: finished))")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    @Test func badTargetsAreRefusedBeforeAnythingIsTouched() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "talosVersion: v1.13.2", with: "talosVersion: v1.13.99") }
            let unknown = try await project.run(["upgrade", "demo", "--yes"])
            #expect(unknown.status == 64 && unknown.stderr.contains("v1.13.99") && unknown.stderr.contains("nothing was touched"), "\(unknown.stderr)")
            try project.edit { $0.replacingOccurrences(of: "talosVersion: v1.13.99", with: "talosVersion: v1.13.1") }
            let down = try await project.run(["upgrade", "demo", "--yes"])
            #expect(down.status == 64 && down.stderr.contains("--allow-downgrade"), "\(down.stderr)")
            let retry = try await project.run(["upgrade", "demo", "--retry"])
            #expect(retry.status == 64, "--retry needs --node: \(retry.stderr)")
        }
    }
}
