import Foundation
import Providers
import ProvisionCore
import Testing
import TestSupport

/// `provision gpu up/down/sweep` as cron runs them: separate invocations against the demo lab,
/// which keeps its EC2 instances and cluster between commands.
@Suite(.serialized) struct GPUFlowTests {
    /// The instances the lab holds, from its saved state: (id, state, tags).
    func instances(_ state: String) throws -> [(id: String, state: String, tags: [String: String])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: state + "/lab/twin.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let list = (object?["ec2"] as? [String: Any])?["instances"] as? [[String: Any]] ?? []
        return list.map { item in
            let tags = Dictionary((item["tags"] as? [[String]] ?? []).map { ($0[0], $0[1]) }, uniquingKeysWith: { $1 })
            return (item["id"] as? String ?? "", item["state"] as? String ?? "", tags)
        }
    }

    func live(_ state: String) throws -> [String] {
        try instances(state).filter { ["pending", "running"].contains($0.state) }.map(\.id)
    }

    @Test(.timeLimit(.minutes(5))) func upTwiceLaunchesOnceAndDownLeavesNothing() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            let up = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(up.status == 0, "\(up.stderr)")
            let first = try await CLI.run(["gpu", "up", "demo/gpu", "--ttl", "2h", "--state-dir", state], timeout: .seconds(150))
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stderr.contains("is Ready; it expires"), "\(first.stderr)")
            #expect(first.stderr.contains("100 GiB gp3 root"), "the pool's root volume, not the AMI's 20 GiB: \(first.stderr)")
            let twin = try String(contentsOfFile: state + "/lab/twin.json", encoding: .utf8)
            #expect(twin.contains("\"rootVolumeGiB\" : 100") || twin.contains("\"rootVolumeGiB\":100"), "the lab's EC2 launched it so")
            let second = try await CLI.run(["gpu", "up", "demo/gpu", "--ttl", "2h", "--state-dir", state], timeout: .seconds(150))
            #expect(second.status == 0, "\(second.stderr)")
            #expect(try live(state).count == 1, "two gpu up runs, one instance")
            let tags = try #require(try instances(state).first?.tags)
            #expect(tags["provision:cluster"] == "demo" && tags["provision:pool"] == "gpu" && tags["provision:owner"] == "demo")
            let expires = try #require(tags["provision:expires-at"].flatMap { ISO8601DateFormatter().date(from: $0) })
            #expect(abs(expires.timeIntervalSinceNow - 7200) < 600, "the TTL is on the instance: \(expires)")

            // `status` reads it all live: every node running, Ready, the control planes etcd members, the instance and its expiry.
            let status = try await CLI.run(["status", "demo", "--json", "--state-dir", state], timeout: .seconds(60))
            #expect(status.status == 0, "\(status.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let nodes = object?["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.count == 6 && nodes.allSatisfy { $0["kubernetes"] as? String == "Ready" && $0["talos"] as? String == "running" }, "\(nodes)")
            #expect(nodes.filter { $0["etcdMember"] as? Bool == true }.count == 3)
            let gpus = object?["gpuInstances"] as? [[String: Any]] ?? []
            #expect(gpus.count == 1 && (gpus.first?["expiresAt"] as? String)?.isEmpty == false, "\(gpus)")

            let down = try await CLI.run(["gpu", "down", "demo/gpu", "--state-dir", state], timeout: .seconds(150))
            #expect(down.status == 0, "\(down.stderr)")
            #expect(try live(state).isEmpty, "gpu down leaves nothing running")
            let again = try await CLI.run(["gpu", "down", "demo/gpu", "--state-dir", state], timeout: .seconds(150))
            #expect(again.status == 0 && again.stderr.contains("nothing to do"), "\(again.stderr)")
        }
    }

    @Test(.timeLimit(.minutes(5))) func twoGPUUpRunsAtOnceMakeOneInstance() async throws {
        let state = temporaryDirectory()
        try await DemoLabLock.exclusive {
            let up = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(up.status == 0, "\(up.stderr)")
            async let a = CLI.run(["gpu", "up", "demo/gpu", "--state-dir", state, "--lock-timeout", "2m"], timeout: .seconds(200))
            async let b = CLI.run(["gpu", "up", "demo/gpu", "--state-dir", state, "--lock-timeout", "2m"], timeout: .seconds(200))
            let (first, second) = try await (a, b)
            #expect([first.status, second.status].allSatisfy { $0 == 0 || $0 == 4 }, "\(first.stderr)\n\(second.stderr)")
            #expect(try live(state).count == 1, "never two instances")
        }
    }

    @Test(.timeLimit(.minutes(5))) func sweepTerminatesAnExpiredInstanceWithAnEmptyStateDirectory() async throws {
        try await DemoLabLock.exclusive {
            let labState = temporaryDirectory()
            let lab = try CLI.Running(["lab", "serve", "demo", "--state-dir", labState], cwd: repositoryRoot, environment: [:])
            let served = try await lab.waitFor(timeout: .seconds(60)) { lines in lines.contains { $0.hasPrefix("ec2  ") } }
            #expect(served, "\(lab.lines)")
            func read(_ name: String) throws -> String {
                try String(contentsOfFile: "\(repositoryRoot)/lab/\(name)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let ec2 = EC2Client(endpoint: URL(string: "http://127.0.0.1:45000/")!, region: "us-east-1",
                                credentials: AWSCredentials(accessKeyID: try read("aws-access-key-id"), secretAccessKey: try read("aws-secret-access-key")))
            // Launched by hand, out of band, an hour past its expiry.
            let past = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
            let spec = EC2LaunchSpec(imageID: "ami-0123456789abcdef0", instanceType: "g5.xlarge", clientToken: UUID().uuidString,
                                     tags: ["provision:cluster": "demo", "provision:pool": "gpu", "provision:expires-at": past])
            let stray = try #require(try await ec2.runInstances(spec).first)
            let unrelated = try #require(try await ec2.runInstances(EC2LaunchSpec(imageID: "ami-0123456789abcdef0", instanceType: "t3.micro",
                                                                                 clientToken: UUID().uuidString, tags: ["team": "other"])).first)

            let sweep = try await CLI.run(["gpu", "sweep", "demo", "--state-dir", temporaryDirectory()], timeout: .seconds(150))
            #expect(sweep.status == 0, "\(sweep.stderr)")
            let states = try await ec2.describeInstances(ids: [stray.id, unrelated.id])
            #expect(states.first { $0.id == stray.id }.map { !$0.isLive } == true, "the expired instance is terminated: \(states)")
            #expect(states.first { $0.id == unrelated.id }?.isLive == true, "an instance without the pool's tags is left alone")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }

    /// On a served lab, whose kubelets keep running between commands as real ones do: after `gpu
    /// down` the worker's Node never comes back (it is deleted only once the instance is
    /// terminated), and `gpu sweep` removes the Node of an instance that was terminated behind
    /// provision's back. `kubectl` is the judge.
    @Test(.timeLimit(.minutes(5))) func downLeavesNoNodeThatComesBackAndSweepRemovesOrphans() async throws {
        try await DemoLabLock.exclusive {
            let state = temporaryDirectory()
            let lab = try CLI.Running(["lab", "serve", "demo", "--state-dir", state], cwd: repositoryRoot, environment: [:])
            let served = try await lab.waitFor(timeout: .seconds(60)) { lines in lines.contains { $0.hasPrefix("ec2  ") } }
            #expect(served, "\(lab.lines)")
            var environment = ProcessInfo.processInfo.environment
            environment["KUBECONFIG"] = state + "/kubeconfig"
            func nodes() async throws -> [String] {
                try await Subprocess.run(["kubectl", "get", "nodes", "-o", "name"], environment: environment).stdout
                    .split(separator: "\n").map { String($0.dropFirst("node/".count)) }
            }
            let inventory = ["cp1", "cp2", "cp3", "mini01", "mini02", "w1"]
            /// Polls kubectl for `seconds` of real time (the demo runs at 1/50: 3 s is 150 s of lab time).
            func neverShows(_ name: String, seconds: Double = 3) async throws -> Bool {
                let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                while ContinuousClock.now < deadline {
                    if try await nodes().contains(name) { return false }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return true
            }

            let up = try await CLI.run(["up", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(up.status == 0, "\(up.stderr)")
            let launched = try await CLI.run(["gpu", "up", "demo/gpu", "--state-dir", state], timeout: .seconds(150))
            #expect(launched.status == 0, "\(launched.stderr)")
            let worker = try #require(try await nodes().first { !inventory.contains($0) }, "the GPU worker registered")
            let down = try await CLI.run(["gpu", "down", "demo/gpu", "--yes", "--state-dir", state], timeout: .seconds(150))
            #expect(down.status == 0, "\(down.stderr)")
            #expect(try await neverShows(worker), "the GPU worker's Node came back after gpu down")

            // An instance terminated out of band leaves its Node behind; the sweep removes it.
            let again = try await CLI.run(["gpu", "up", "demo/gpu", "--state-dir", state], timeout: .seconds(150))
            #expect(again.status == 0, "\(again.stderr)")
            let second = try #require(try await nodes().first { !inventory.contains($0) })
            func read(_ name: String) throws -> String {
                try String(contentsOfFile: "\(repositoryRoot)/lab/\(name)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let ec2 = EC2Client(endpoint: URL(string: "http://127.0.0.1:45000/")!, region: "us-east-1",
                                credentials: AWSCredentials(accessKeyID: try read("aws-access-key-id"), secretAccessKey: try read("aws-secret-access-key")))
            let pool = try await ec2.liveInstances(tagged: ["provision:cluster": "demo", "provision:pool": "gpu"])
            let requests = pool.compactMap(\.spotRequestID)
            if !requests.isEmpty { try await ec2.cancelSpotInstanceRequests(ids: requests) }
            _ = try await ec2.terminateInstances(ids: pool.map(\.id))
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, try await !ec2.unterminatedInstances(tagged: ["provision:pool": "gpu"]).isEmpty {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await nodes().contains(second), "the Node outlives its instance")
            let sweep = try await CLI.run(["gpu", "sweep", "demo", "--state-dir", state], timeout: .seconds(150))
            #expect(sweep.status == 0, "\(sweep.stderr)")
            #expect(try await neverShows(second, seconds: 1), "gpu sweep removes the Node whose instance is gone")
            #expect(Set(try await nodes()) == Set(inventory), "the cluster's own nodes are untouched")
            lab.signal(SIGINT)
            _ = try await lab.finish(timeout: .seconds(30))
        }
    }
}
