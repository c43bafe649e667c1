import Foundation
import ProvisionCore
import Testing
import TestSupport

/// `provision safe-reset` on the demo lab, as separate invocations on the persistent twin.
@Suite(.serialized) struct SafeResetFlowTests {
    struct Twin {
        let path: String
        var object: [String: Any]

        init(_ state: String) throws {
            path = state + "/lab/twin.json"
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        }

        var nodes: [[String: Any]] { object["nodes"] as? [[String: Any]] ?? [] }
        func bootID(_ name: String) -> String? { nodes.first { $0["name"] as? String == name }?["bootID"] as? String }
        var members: [[String: Any]] {
            ((object["etcd"] as? [String: Any])?["clusters"] as? [[String: Any]] ?? []).flatMap { $0["members"] as? [[String: Any]] ?? [] }
        }

        /// Pulls a machine's plug while no command runs (a power cut the next command must notice).
        mutating func powerOff(_ name: String) throws {
            object["nodes"] = nodes.map { node in
                var node = node
                if node["name"] as? String == name { node["powered"] = false }
                return node
            }
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
    }

    func upDemo(_ state: String) async throws {
        let up = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
        #expect(up.status == 0, "\(up.stderr)")
    }

    func safeReset(_ state: String, _ extra: [String] = []) async throws -> CLI.Result {
        try await CLI.run(["safe-reset", "demo/cp2", "--yes", "--json", "--state-dir", state] + extra, timeout: .seconds(150))
    }

    func steps(_ result: CLI.Result, _ kind: String) -> Set<String> {
        Set(CLI.events(result.stdout.split(separator: "\n").map(String.init), kind: kind).compactMap { $0["step"] as? String })
    }

    @Test(.timeLimit(.minutes(5))) func aControlPlaneIsResetAndRejoins() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            try await upDemo(state)
            let before = try Twin(state)
            let oldMember = before.members.first { $0["hostname"] as? String == "cp2" }.map { "\($0["id"] ?? "")" }
            let result = try await safeReset(state)
            #expect(result.status == 0, "\(result.stderr)")
            let applied = steps(result, "step.applied")
            for step in ["snapshot", "reset@cp2", "delete-node@cp2", "apply-config@cp2", "uncordon@cp2"] {
                #expect(applied.contains(step), "\(step): \(applied.sorted())")
            }
            let after = try Twin(state)
            #expect(after.members.count == 3, "cp2 is an etcd member again: \(after.members)")
            #expect(after.members.first { $0["hostname"] as? String == "cp2" }.map { "\($0["id"] ?? "")" } != oldMember, "as a new member")
            #expect(after.bootID("cp2") != before.bootID("cp2"), "it rebooted")
            #expect(try Journal(path: state + "/journal.sqlite").disruptions().isEmpty, "the flow finished and cleared its record")
            let snapshots = try FileManager.default.contentsOfDirectory(atPath: state + "/snapshots")
            #expect(!snapshots.isEmpty, "etcd was snapshotted first")
        }
    }

    @Test(.timeLimit(.minutes(5))) func anotherControlPlaneDownRefusesWithExitThreeAndTouchesNothing() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            try await upDemo(state)
            var twin = try Twin(state)
            try twin.powerOff("cp3")
            let bootBefore = twin.bootID("cp2")
            let result = try await safeReset(state)
            #expect(result.status == 3, "\(result.stderr)")
            #expect(result.stdout.contains("cp3"), "names the member that is down")
            #expect(!steps(result, "step.applied").contains("reset@cp2"))
            #expect(try Twin(state).bootID("cp2") == bootBefore, "cp2 was not touched")
            #expect(try Journal(path: state + "/journal.sqlite").disruptions().isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(5))) func interruptedAfterTheResetItResumesWithoutASecondReset() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            try await upDemo(state)
            let original = try Twin(state).bootID("cp2")
            // kill -9 the moment the reset phase has finished.
            let first = try CLI.Running(["safe-reset", "demo/cp2", "--yes", "--json", "--state-dir", state], cwd: repositoryRoot, environment: [:])
            let reset = try await first.waitFor(timeout: .seconds(120)) { lines in
                CLI.events(lines, kind: "step.applied").contains { $0["step"] as? String == "reset@cp2" }
            }
            #expect(reset, "\(first.lines)")
            first.signal(SIGKILL)
            _ = try? await first.finish(timeout: .seconds(30))
            let afterReset = try Twin(state).bootID("cp2")
            #expect(afterReset != original)

            let resumed = try await safeReset(state)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(steps(resumed, "step.satisfied").contains("reset@cp2"), "the reset is verified, not repeated")
            #expect(!steps(resumed, "step.applied").contains("reset@cp2"))
            #expect(try Twin(state).bootID("cp2") == afterReset, "no second reset: the boot ID did not change again")
            #expect(try Twin(state).members.count == 3)
        }
    }

    /// cp1 alone: etcd's last member cannot leave, so the checks refuse; with `--force` the reset
    /// is not graceful (Talos' advice), it completes, and cp1 comes back with etcd bootstrapped
    /// from the snapshot this run took first: the same cluster (kube-system keeps its UID), not a
    /// new empty one.
    @Test(.timeLimit(.minutes(5))) func theOnlyControlPlaneIsResetWithForceAndComesBackFromTheRunsSnapshot() async throws {
        try await DemoLabLock.exclusive {
            let project = try DemoProject()
            try project.edit { text in
                var text = text
                for cp in ["cp2", "cp3"] {
                    guard let start = text.range(of: "  - name: \(cp)\n"), let end = text.range(of: "  - name: ", range: start.upperBound..<text.endIndex) else { return text }
                    text.removeSubrange(start.lowerBound..<end.lowerBound)
                }
                return text.replacingOccurrences(of: "      - {node: cp2, address: 127.0.0.12}\n", with: "")
            }
            let up = try await project.run(["up", "demo"])
            #expect(up.status == 0, "\(up.stderr)")
            let uid = { (state: String) throws -> String? in
                let kube = try Twin(state).object["kube"] as? [String: Any]
                let objects = kube?["objects"] as? [[String: Any]] ?? []
                let namespace = objects.first { $0["plural"] as? String == "namespaces" && $0["name"] as? String == "kube-system" }
                return ((namespace?["object"] as? [String: Any])?["metadata"] as? [String: Any])?["uid"] as? String
            }
            let before = try uid(project.state)
            #expect(before != nil)
            let bootBefore = try Twin(project.state).bootID("cp1")

            let refused = try await project.run(["safe-reset", "demo/cp1", "--yes", "--json"])
            #expect(refused.status == 3, "etcd's last member: \(refused.stderr)")
            #expect(try Twin(project.state).bootID("cp1") == bootBefore, "nothing was touched")

            // Killed once the reset is done: etcd is gone, and the resumed run keeps the snapshot taken before.
            let first = try CLI.Running(["safe-reset", "demo/cp1", "--yes", "--json", "--force", "--state-dir", project.state], cwd: project.dir, environment: [:])
            let reset = try await first.waitFor(timeout: .seconds(120)) { lines in
                CLI.events(lines, kind: "step.applied").contains { $0["step"] as? String == "reset@cp1" }
            }
            #expect(reset, "\(first.lines)")
            first.signal(SIGKILL)
            _ = try? await first.finish(timeout: .seconds(30))
            #expect(first.lines.contains { $0.contains("graceful=false") }, "reset without leaving etcd")

            let forced = try await project.run(["safe-reset", "demo/cp1", "--yes", "--json", "--force"], timeout: .seconds(240))
            #expect(forced.status == 0, "\(forced.stderr)")
            let applied = steps(forced, "step.applied")
            for step in ["snapshot", "reseed@cp1", "uncordon@cp1"] { #expect(applied.contains(step), "\(step): \(applied.sorted())") }
            #expect(!applied.contains("reset@cp1"), "never reset twice")
            #expect(forced.stdout.contains("taken before it, is kept"), "the resumed run keeps the snapshot from before the reset")
            let twin = try Twin(project.state)
            #expect(twin.bootID("cp1") != bootBefore, "it was reset and rebooted")
            #expect(twin.members.map { $0["hostname"] as? String } == ["cp1"], "\(twin.members)")
            #expect(try uid(project.state) == before, "the cluster came back from the snapshot, not empty")
            #expect(try Journal(path: project.state + "/journal.sqlite").disruptions().isEmpty, "the flow finished and cleared its record")
        }
    }
}
