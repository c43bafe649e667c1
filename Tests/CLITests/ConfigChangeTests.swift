import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import TalosKit

/// Day 2 on the demo lab: an inventory change to a running node is planned honestly and applied
/// safely, live when Talos can, else staged and rebooted once, gated, with the lab's record as
/// the judge of safety over time and the real kubectl as the judge of the cluster.
@Suite(.serialized) struct ConfigChangeTests {
    static let liveChange = "machine: {sysctls: {net.core.somaxconn: \"65535\"}}"
    static let rebootChange = "machine: {udev: {rules: ['SUBSYSTEM==\"drm\", KERNEL==\"renderD*\", GROUP=\"44\", MODE=\"0660\"']}}"

    func changes(_ plan: CLI.Result, _ project: DemoProject) -> [[String: Any]] {
        project.json(plan)["changes"] as? [[String: Any]] ?? []
    }

    @Test(.timeLimit(.minutes(5))) func aSysctlPatchIsPlannedAndAppliedLiveWithoutAReboot() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let built = try await project.run(["up", "demo"])
            #expect(built.status == 0, "\(built.stderr)")
            let converged = try await project.run(["plan", "demo"])
            #expect(converged.status == 0, "a converged demo plans nothing: \(converged.stdout)\(converged.stderr)")

            try project.patch("cp1", Self.liveChange)
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect(plan.status == 2, "\(plan.stderr)")
            let cp1 = changes(plan, project).first { $0["node"] as? String == "cp1" }
            #expect(cp1?["resource"] as? String == "config" && cp1?["reboot"] as? Bool == false, "Talos applies a sysctl live: \(changes(plan, project))")
            #expect((cp1?["diff"] as? String)?.contains("+        net.core.somaxconn: '65535'") == true, "\(cp1?["diff"] ?? "")")
            #expect(changes(plan, project).count == 1, "nothing else would change: \(changes(plan, project))")
            let human = try await project.run(["plan", "demo"])
            #expect(human.stdout.contains("cp1") && human.stdout.contains("[live]"), "\(human.stdout)")

            let before = try project.bootIDs()
            let applied = try await project.run(["up", "demo"])
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(applied.stderr.contains("config applied live, no reboot"), "\(applied.stderr)")
            #expect(try project.bootIDs() == before, "no node rebooted, cp1 least of all")

            let again = try await project.run(["up", "demo"])
            #expect(again.status == 0 && again.stderr.contains("nothing to do"), "\(again.stderr)")
            let dry = try await project.run(["up", "demo", "--dry-run"])
            #expect(dry.status == 0 && dry.stderr.contains("0 would change"), "\(dry.stderr)")
            let replanned = try await project.run(["plan", "demo"])
            #expect(replanned.status == 0, "\(replanned.stdout)")

            // The version contract was frozen when the cluster was created; a raised talosVersion leaves it.
            let contractFile = project.state + "/version-contract.json"
            let frozen = try String(contentsOfFile: contractFile, encoding: .utf8)
            #expect(frozen.contains("\"minor\" : \"v1.13\"") && frozen.contains("v1.13.2"), "\(frozen)")
            try project.edit { $0.replacingOccurrences(of: "talosVersion: v1.13.2", with: "talosVersion: v1.13.9") }
            _ = try await project.run(["plan", "demo"])
            #expect(try String(contentsOfFile: contractFile, encoding: .utf8) == frozen, "raising talosVersion never moves the contract")
            let status = try await project.run(["status", "demo", "--json"])
            let contract = project.json(status)["versionContract"] as? [String: Any]
            #expect(contract?["talos"] as? String == "v1.13" && contract?["frozenFrom"] as? String == "v1.13.2", "\(status.stdout)")
        }
    }

    @Test(.timeLimit(.minutes(5))) func aChangeThatNeedsARebootRebootsCp2OnceAndNeverLosesQuorum() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            let built = try await project.run(["up", "demo"])
            #expect(built.status == 0, "\(built.stderr)")

            try project.patch("cp2", Self.rebootChange)
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect(plan.status == 2, "\(plan.stderr)")
            let cp2 = changes(plan, project).first { $0["node"] as? String == "cp2" }
            #expect(cp2?["reboot"] as? Bool == true, "Talos needs a reboot for udev rules: \(changes(plan, project))")

            let start = LabRecordFile.now()
            let applied = try await project.run(["up", "demo"])
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(applied.stderr.contains("config staged"), "\(applied.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            #expect(record.boots(of: "cp2", since: start) == 1, "cp2 rebooted exactly once")
            for node in ["cp1", "cp3", "mini01", "mini02", "w1"] { #expect(record.boots(of: node, since: start) == 0, "\(node) was not rebooted") }
            #expect(record.mostDownAtOnce(["cp1", "cp2", "cp3"], since: start) <= 1, "never two control planes down")
            #expect(!record.lostQuorum(since: start), "etcd never lost quorum")

            let status = try await project.run(["status", "demo", "--json"])
            let nodes = project.json(status)["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.filter { $0["etcdMember"] as? Bool == true }.count == 3, "\(nodes)")
            let kubectl = try await project.kubectl(["get", "nodes", "--no-headers"])
            let rows = kubectl.stdout.split(separator: "\n")
            #expect(rows.count == 6 && rows.allSatisfy { $0.contains(" Ready ") }, "\(kubectl.stdout)\(kubectl.stderr)")
            let again = try await project.run(["plan", "demo"])
            #expect(again.status == 0, "converged after the reboot: \(again.stdout)")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// A kube-apiserver flag for every control plane (Talos re-renders its static pod on any change
    /// to its config): `up` applies it one control plane at a time, each waited for until its
    /// kube-apiserver runs the new config-version and is Ready, so never two restart at once; a
    /// worker-only change in the same run still goes to every worker at once.
    @Test(.timeLimit(.minutes(5))) func anApiServerFlagRestartsOneKubeApiserverAtATime() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let built = try await project.run(["up", "demo"])
            #expect(built.status == 0, "\(built.stderr)")
            try project.edit {
                $0.replacingOccurrences(of: "  name: demo\n", with: "  name: demo\n  patches:\n    controlplane:\n"
                    + "      - {cluster: {apiServer: {extraArgs: {audit-log-maxage: \"30\"}}}}\n    worker:\n"
                    + "      - {machine: {sysctls: {net.core.somaxconn: \"65535\"}}}\n")
            }
            let start = LabRecordFile.now()
            let applied = try await project.run(["up", "demo", "--json"])
            #expect(applied.status == 0, "\(applied.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state).since(start)
            let apiserver = record.filter { $0.event == "component" && $0.method == "kube-apiserver" }
            var spans: [(node: String, from: Int64, to: Int64)] = []
            for node in ["cp1", "cp2", "cp3"] {
                let mine = apiserver.filter { $0.node == node }
                #expect(mine.map { $0.stage ?? "" } == ["restarting", "ready"], "\(node) restarted its kube-apiserver once: \(mine.map { "\($0.t) \($0.stage ?? "")" })")
                if let from = mine.first?.t, let to = mine.last?.t { spans.append((node, from, to)) }
            }
            spans.sort { $0.from < $1.from }
            for (earlier, later) in zip(spans, spans.dropFirst()) {
                #expect(later.from >= earlier.to, "\(later.node)'s kube-apiserver restarted before \(earlier.node)'s was ready again: \(spans)")
            }
            #expect(!record.contains { $0.event == "component" && ["mini01", "mini02", "w1"].contains($0.node ?? "") }, "workers run no static pods")
            // The workers' applies overlapped: each started before any of them finished.
            let events = CLI.events(applied.stdout.split(separator: "\n").map(String.init), kind: nil)
            func index(_ kind: String, _ node: String) -> Int? {
                events.firstIndex { $0["kind"] as? String == kind && $0["step"] as? String == "apply-config@\(node)" }
            }
            let starts = ["mini01", "mini02", "w1"].compactMap { index("step.started", $0) }
            let ends = ["mini01", "mini02", "w1"].compactMap { index("step.applied", $0) }
            #expect(starts.count == 3 && ends.count == 3 && starts.max()! < ends.min()!, "worker applies run in parallel: starts \(starts), ends \(ends)")
            #expect(try LabRecordFile(stateDirectory: project.state).boots(of: "cp1", since: start) == 0, "live: nothing rebooted")
        }
    }

    /// `kill -9` of `up` at five points of cp2's gated reboot, each followed by `up`: the machines
    /// (a served lab) live on as real ones would, and cp2 still reboots exactly once.
    @Test(.timeLimit(.minutes(8))) func killedAtFivePointsOfTheRebootCp2StillRebootsOnce() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.patch("cp2", Self.rebootChange)
            let start = LabRecordFile.now()
            // Kill points, in order: each run is killed when it reaches the next one.
            let points: [(String, (String) -> Bool)] = [
                ("apply-config@cp2 started", { $0.contains("\"step.started\"") && $0.contains("apply-config@cp2") }),
                ("config staged", { $0.contains("config staged") }),
                ("reboot recorded", { $0.contains("recorded\"") && $0.contains("reboot-cp@cp2") }),
                ("reboot sent", { $0.contains("reboot sent") }),
                ("cp2 back", { $0.contains("cp2: back (boot") }),
            ]
            var reached: [String] = []
            for (name, matches) in points {
                let run = try project.running(["up", "demo", "--json"])
                let hit = try await run.waitFor(timeout: .seconds(120)) { lines in lines.contains(where: matches) }
                run.signal(SIGKILL)
                _ = try? await run.finish(timeout: .seconds(30))
                if hit { reached.append(name) }
            }
            #expect(reached.count >= 3, "the runs were killed inside the reboot flow: \(reached)")
            let last = try await project.run(["up", "demo"])
            #expect(last.status == 0, "\(last.stderr)")
            let record = try LabRecordFile(stateDirectory: project.state)
            #expect(record.boots(of: "cp2", since: start) == 1, "cp2 rebooted exactly once across \(points.count) kills")
            #expect(record.mostDownAtOnce(["cp1", "cp2", "cp3"], since: start) <= 1)
            #expect(!record.lostQuorum(since: start))
            let plan = try await project.run(["plan", "demo"])
            #expect(plan.status == 0, "the same end state: \(plan.stdout)")
            let kubectl = try await project.kubectl(["get", "nodes", "--no-headers"])
            #expect(kubectl.stdout.split(separator: "\n").filter { $0.contains(" Ready ") }.count == 6, "\(kubectl.stdout)")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// A patch Talos' schema rejects is refused before anything is sent: exit 64 naming the patch.
    @Test func aPatchThatBreaksTheSchemaIsRefusedOffline() async throws {
        let project = try DemoProject()
        try project.patch("cp2", "machine: {env: {GODEBUG: \"netdns=go\"}}")
        let up = try await project.run(["up", "demo"])
        #expect(up.status == 64, "\(up.stderr)")
        #expect(up.stderr.contains("machine.env: unknown key") && up.stderr.contains("demo.yaml:"), "\(up.stderr)")
        #expect(up.stderr.contains("nothing was sent"), "\(up.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project.state + "/lab/twin.json"), "no lab was even started")
    }

    /// A changed Cilium value and a changed 1Password vault: planned with what differs, reconciled
    /// by `up` (the Cilium installer runs again, the store moves), and then nothing is pending.
    @Test(.timeLimit(.minutes(5))) func theKubernetesLayerIsPlannedAndReconciled() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "  apiServer: kubeprism\n", with: "  apiServer: kubeprism\n  hubble: true\n")
                .replacingOccurrences(of: "  vault: demo\n", with: "  vault: homelab\n") }
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect(plan.status == 2, "\(plan.stderr)")
            let changes = changes(plan, project)
            let cilium = changes.first { $0["resource"] as? String == "cilium" }
            #expect((cilium?["diff"] as? String)?.contains("+hubble.enabled=true") == true, "\(changes)")
            #expect(changes.contains { $0["resource"] as? String == "foundation" && ($0["reason"] as? String)?.contains("demo -> homelab") == true }, "\(changes)")
            let up = try await project.run(["up", "demo"])
            #expect(up.status == 0 && up.stderr.contains("upgrading Cilium") && up.stderr.contains("(vault homelab)"), "\(up.stderr)")
            let after = try await project.run(["plan", "demo"])
            #expect(after.status == 0, "reconciled: \(after.stdout)\(after.stderr)")
        }
    }

    /// What people and cron see of a day-2 run: the bundle's keys and tokens, the 1Password token and
    /// credentials, the cloud keys appear in no plan, diff, log line, trace log or journal row.
    @Test(.timeLimit(.minutes(5))) func noSecretReachesAPlanADiffALogOrTheJournal() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            var seen = ""
            func run(_ arguments: [String]) async throws {
                let result = try await project.run(arguments)
                seen += result.stdout + result.stderr
            }
            try await run(["up", "demo", "-v"])
            try project.patch("cp1", Self.liveChange)
            try project.patch("cp2", Self.rebootChange)
            try await run(["plan", "demo"])
            try await run(["plan", "demo", "--json"])
            try await run(["up", "demo", "--dry-run", "-v"])
            try await run(["up", "demo", "-v", "--json"])
            for log in try FileManager.default.contentsOfDirectory(atPath: project.state + "/logs") {
                seen += try String(contentsOfFile: "\(project.state)/logs/\(log)", encoding: .utf8)
            }
            let journal = try Journal(path: project.state + "/journal.sqlite")
            seen += try journal.allAttempts().map { "\($0.error ?? "") \($0.outputs ?? "")" }.joined()
            seen += try journal.disruptions().map { "\($0.detail) \($0.bootBefore)" }.joined()
            let bundle = try SecretsBundle.load(path: project.state + "/secrets.yaml")
            var secrets = bundle.secretValues
            for name in ["onepassword-token", "aws-secret-access-key"] {
                secrets.append(try String(contentsOfFile: "\(project.dir)/lab/\(name)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            let credentials = try String(contentsOfFile: "\(project.dir)/lab/onepassword-credentials.json", encoding: .utf8)
            secrets.append(Data(credentials.utf8).base64EncodedString())
            #expect(seen.contains("config differs") && seen.contains("<redacted>"), "the scan saw the plans and their diffs")
            for secret in secrets where secret.count >= 8 { #expect(!seen.contains(secret), "a secret leaked: \(secret.prefix(6))…") }
        }
    }

    /// A VM sized otherwise than the inventory says is planned as a resize (an advisory: provision
    /// does not resize a running VM), and a run warns instead of calling it done.
    @Test(.timeLimit(.minutes(4))) func aResizedVMIsPlannedAsAnAdvisory() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            #expect(try await project.run(["up", "demo"]).status == 0)
            try project.edit { $0.replacingOccurrences(of: "cpus: 2, memory: 4GiB, disk: 20GiB, mac: \"52:54:00:00:00:21\"",
                                                      with: "cpus: 4, memory: 8GiB, disk: 20GiB, mac: \"52:54:00:00:00:21\"") }
            let plan = try await project.run(["plan", "demo", "--json"])
            #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
            let advisories = project.json(plan)["advisories"] as? [[String: Any]] ?? []
            let w1 = advisories.first { $0["node"] as? String == "w1" }
            #expect(w1?["action"] as? String == "resize" && (w1?["reason"] as? String)?.contains("cpus 2 -> 4, memory 4GiB -> 8GiB") == true, "\(advisories)")
            let up = try await project.run(["up", "demo"])
            #expect(up.status == 0 && up.stderr.contains("provision does not resize a VM"), "\(up.stderr)")
        }
    }
}
