import Foundation
import ProvisionCore
import Testing
import TestSupport

/// `kill -9` in the middle of `provision up demo`, again and again, each time at a later point of
/// the flow: the runs resume from the journal and the lab's saved state, and the end state is a
/// clean run's: every node Ready, one etcd cluster of three, four VMs, no stray instance.
@Suite struct KillResumeTests {
    @Test(.timeLimit(.minutes(8))) func upDemoKilledTenTimesEndsLikeACleanRun() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            var kills = 0
            var appliedSoFar = 0
            while kills < 10 {
                let run = try CLI.Running(["up", "demo", "--json", "--state-dir", state], cwd: repositoryRoot, environment: [:])
                // A kill point a few finished steps into this run: spread over the whole flow across runs.
                let reached = try await run.waitFor(timeout: .seconds(120)) { lines in CLI.events(lines, kind: "step.applied").count >= 1 }
                guard reached else {
                    let finished = try await run.finish(timeout: .seconds(120))
                    #expect(finished.status == 0, "a run that was not killed must succeed: \(finished.stderr)")
                    break
                }
                run.signal(SIGKILL)
                _ = try? await run.finish(timeout: .seconds(30))
                appliedSoFar += CLI.events(run.lines, kind: "step.applied").count
                kills += 1
            }
            #expect(kills == 10, "the flow was interrupted at many points (\(kills) kills, \(appliedSoFar) steps applied before them)")

            let last = try await CLI.run(["up", "demo", "--json", "--state-dir", state], timeout: .seconds(150))
            #expect(last.status == 0, "\(last.stderr)")
            let status = try await CLI.run(["status", "demo", "--json", "--state-dir", state], timeout: .seconds(60))
            let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let nodes = object?["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.count == 6 && nodes.allSatisfy { $0["kubernetes"] as? String == "Ready" }, "\(nodes)")
            #expect(nodes.filter { $0["etcdMember"] as? Bool == true }.count == 3)
            #expect((object?["gpuInstances"] as? [Any])?.isEmpty == true)

            let twin = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/lab/twin.json"))) as? [String: Any]
            let clusters = ((twin?["etcd"] as? [String: Any])?["clusters"] as? [[String: Any]] ?? []).filter { !($0["members"] as? [Any] ?? []).isEmpty }
            #expect(clusters.count == 1, "one etcd cluster, never a second bootstrap: \(clusters)")
            #expect((clusters.first?["members"] as? [Any])?.count == 3)
            let virsh = try await Subprocess.run(["virsh", "-c", "test://\(state)/lab/libvirt-lab-libvirt.xml", "list", "--all", "--name"])
            #expect(virsh.stdout.split(separator: "\n").sorted() == ["cp1", "cp2", "cp3", "w1"], "exactly the four VMs: \(virsh.stdout)")
        }
    }
}
