import Foundation
import ProvisionCore
import Testing
import TestSupport

/// `state.backend: s3`: two "hosts" (two state directories) share the demo cluster through one
/// moto_server bucket. The lease keeps them from running at once, a dead holder's lease is taken
/// over once stale, the second host works from the bucket's bundle, and a store that ignores
/// conditional writes is refused before anything changes.
@Suite(.serialized) struct SharedStateTests {
    func keys(_ moto: MotoServer) async throws -> [String] { try await BackupProject.keys(moto.endpoint, "demo-backups") }

    @Test(.timeLimit(.minutes(8))) func twoHostsSharingABucketNeverRunAtOnce() async throws {
        try await DemoLabLock.exclusive {
            let moto = try await MotoServer()
            defer { Task { await moto.stop() } }
            try await BackupProject.makeBucket(moto.endpoint, "demo-backups")
            let project = try await BackupProject(endpoint: moto.endpoint).project
            // One lab world both hosts work on (as two hosts share one hypervisor), on a slower clock
            // so host A is still running when host B tries.
            try project.edit {
                $0.replacingOccurrences(of: "lab:\n  timeScale: 0.02\n", with: "lab:\n  timeScale: 0.2\n  directory: ../world\n")
                    + "\nstate: {backend: s3, lockTTL: 10s}\n"
            }
            let world = project.dir + "/world"
            let hostB = project.dir + "/host-b"
            let lab = try await project.serve()
            defer { lab.signal(SIGINT) }
            let start = LabRecordFile.now()

            let hostA = try project.running(["up", "demo", "--json"])
            let configuring = try await hostA.waitFor(timeout: .seconds(120)) { lines in lines.contains { $0.contains("apply-config@") } }
            #expect(configuring, "host A reached its config step: \(hostA.lines.suffix(5))")
            #expect(try await keys(moto).contains("state/demo/lock"), "host A holds the lease")

            let refused = try await CLI.run(["up", "demo", "--state-dir", hostB, "--lock-timeout", "0"], cwd: project.dir)
            #expect(refused.status == 4, "\(refused.stderr)")
            #expect(refused.stderr.contains("pid \(hostA.process.processIdentifier) on \(ProcessInfo.processInfo.hostName)"), "names the holder: \(refused.stderr)")
            #expect(refused.stderr.contains("up demo"), "names the holder's command: \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: hostB + "/journal.sqlite") && !FileManager.default.fileExists(atPath: hostB + "/secrets.yaml"),
                    "the refused host wrote no journal and took no bundle")

            hostA.signal(SIGKILL)
            _ = try? await hostA.finish(timeout: .seconds(30))
            let bundle = try String(contentsOfFile: project.state + "/secrets.yaml", encoding: .utf8)

            // Host B waits for the dead holder's lease to go stale, takes it over, finishes the cluster.
            let took = try await CLI.run(["up", "demo", "--state-dir", hostB, "--lock-timeout", "90s"], cwd: project.dir, timeout: .seconds(300))
            #expect(took.status == 0, "\(took.stderr.suffix(800))")
            #expect(took.stderr.contains("took over the shared lock") && took.stderr.contains("pid \(hostA.process.processIdentifier)"), "\(took.stderr.prefix(800))")
            #expect(took.stderr.contains("secrets bundle taken from"), "\(took.stderr.prefix(800))")
            #expect(try String(contentsOfFile: hostB + "/secrets.yaml", encoding: .utf8) == bundle, "host B uses host A's cluster secrets")
            let mode = try FileManager.default.attributesOfItem(atPath: hostB + "/secrets.yaml")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let record = try LabRecordFile(labDirectory: world)
            #expect(record.since(start).filter { $0.event == "etcd-bootstrap" }.count == 1, "one cluster, bootstrapped once across both hosts")

            let stored = try await keys(moto)
            #expect(!stored.contains("state/demo/lock"), "host B released the lease: \(stored)")
            #expect(stored.contains("state/demo/secrets.age") && stored.contains("state/demo/version-contract.json"), "\(stored)")
            #expect(stored.contains { $0.hasPrefix("state/demo/runs/") && $0.hasSuffix(".json") }, "host B's run is archived: \(stored)")

            // A third host with nothing but the inventory reads the same cluster.
            let hostC = project.dir + "/host-c"
            let status = try await CLI.run(["status", "demo", "--json", "--state-dir", hostC], cwd: project.dir)
            #expect(status.status == 0, "\(status.stderr)")
            let nodes = project.json(status)["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.filter { $0["etcdMember"] as? Bool == true }.count == 3, "\(status.stdout.prefix(600))")
            #expect(nodes.filter { $0["kubernetes"] as? String == "Ready" }.count == 6, "\(status.stdout.prefix(600))")
            #expect(nodes.filter { $0["machine"] as? String == "running" }.count == 6, "the hosts share one hypervisor: \(status.stdout.prefix(600))")

            // A store that ignores If-None-Match: refused before any change, naming the store.
            let proxy = try await S3Proxy(upstream: moto.endpoint, stripConditional: true)
            defer { Task { await proxy.stop() } }
            try project.edit { $0.replacingOccurrences(of: "endpoint: \(moto.endpoint.absoluteString)", with: "endpoint: \(proxy.endpoint.absoluteString)") }
            let hostD = project.dir + "/host-d"
            let before = LabRecordFile.now()
            let ignored = try await CLI.run(["up", "demo", "--state-dir", hostD], cwd: project.dir)
            #expect(ignored.status == 3, "\(ignored.stderr)")
            #expect(ignored.stderr.contains("ignores conditional writes") && ignored.stderr.contains(proxy.endpoint.absoluteString), "\(ignored.stderr)")
            #expect(!FileManager.default.fileExists(atPath: hostD + "/journal.sqlite"))
            #expect(try LabRecordFile(labDirectory: world).since(before).filter { $0.node != nil }.isEmpty, "no machine was touched")
            #expect(try await !keys(moto).contains { $0.contains("/probe-") }, "the probe key is gone")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }
}
