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
}
