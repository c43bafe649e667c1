import Foundation
import Lab
import Providers
import ProvisionCore
import TalosKit
import Testing
import TestSupport

/// The lab's EC2 endpoint, proved against independent parts: boto3 (the real AWS SDK) must see the
/// shapes moto returns, our own EC2 client launches through it, and an instance boots as a Talos
/// worker from its user data.
@Suite struct LabEC2Tests {
    static let credentials = AWSCredentials(accessKeyID: "AKIALAB000000000TEST", secretAccessKey: UUID().uuidString)

    struct Lab {
        let ec2: SimulatedEC2
        let server: LabEC2Server
        let endpoint: URL

        init(cluster: SimulatedTalosCluster = SimulatedTalosCluster(specs: []), addresses: Int = 12) async throws {
            ec2 = SimulatedEC2(cluster: cluster, addresses: (0..<addresses).map { _ in Loopback.address() }, talosVersion: "v1.13.2", timeScale: 0)
            let host = Loopback.address()
            server = try await LabEC2Server(host: host, port: 0, ec2: ec2, credentials: LabEC2Tests.credentials, region: "us-east-1")
            endpoint = URL(string: "http://\(host):\(server.port)/")!
        }

        func client(secret: String = LabEC2Tests.credentials.secretAccessKey) -> EC2Client {
            EC2Client(endpoint: endpoint, region: "us-east-1",
                      credentials: AWSCredentials(accessKeyID: LabEC2Tests.credentials.accessKeyID, secretAccessKey: secret))
        }
    }

    static func boto3(_ endpoint: URL, secret: String) async throws -> [String: Any] {
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = credentials.accessKeyID
        environment["AWS_SECRET_ACCESS_KEY"] = secret
        let result = try await Subprocess.run(["python3", "\(repositoryRoot)/Tests/Interop/ec2_shapes.py", "--endpoint", endpoint.absoluteString],
                                              environment: environment)
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw PeerError("boto3 against \(endpoint): \(result.stderr)")
        }
        return object
    }

    /// Fields the lab leaves out on purpose, or that only one side has:
    static let knownDifferences: Set<String> = [
        // A loopback lab has no public addresses.
        "Instances[].PublicIpAddress", "Instances[].NetworkInterfaces[].Association.IpOwnerId",
        "Instances[].NetworkInterfaces[].Association.PublicDnsName", "Instances[].NetworkInterfaces[].Association.PublicIp",
        "Instances[].NetworkInterfaces[].PrivateIpAddresses[].Association.IpOwnerId",
        "Instances[].NetworkInterfaces[].PrivateIpAddresses[].Association.PublicDnsName",
        "Instances[].NetworkInterfaces[].PrivateIpAddresses[].Association.PublicIp",
        // moto answers "None" for a kernel no HVM instance has.
        "Instances[].KernelId",
        // AWS names the spot request of a spot instance; moto launches spot instances without one.
        "Instances[].SpotInstanceRequestId",
    ]

    static func shapeDifferences(_ lab: [String: Any], _ moto: [String: Any]) -> [String] {
        let labShapes = lab["shapes"] as? [String: [String]] ?? [:], motoShapes = moto["shapes"] as? [String: [String]] ?? [:]
        var differences: [String] = []
        for (call, motoPaths) in motoShapes {
            func normalized(_ paths: [String]) -> Set<String> {
                Set(paths.map { $0.replacingOccurrences(of: "Reservations[].", with: "") }).subtracting(knownDifferences)
            }
            let labSet = normalized(labShapes[call] ?? []), motoSet = normalized(motoPaths)
            differences += motoSet.subtracting(labSet).sorted().map { "\(call): lab lacks \($0)" }
            differences += labSet.subtracting(motoSet).sorted().map { "\(call): lab adds \($0)" }
        }
        return differences
    }

    @Test(.timeLimit(.minutes(2))) func boto3SeesTheShapesMotoReturns() async throws {
        let lab = try await Lab()
        defer { Task { await lab.server.close() } }
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        let fromLab = try await Self.boto3(lab.endpoint, secret: Self.credentials.secretAccessKey)
        let fromMoto = try await Self.boto3(moto.endpoint, secret: "moto-accepts-any")
        #expect(Self.shapeDifferences(fromLab, fromMoto).isEmpty, "\(Self.shapeDifferences(fromLab, fromMoto))")

        let facts = fromLab["facts"] as? [String: Any] ?? [:]
        #expect(facts["sameClientTokenSameInstance"] as? Bool == true, "a repeated ClientToken returns the first launch, as EC2 does")
        #expect((facts["taggedIDs"] as? [String])?.count == 1)
        #expect(facts["pages"] as? Int == 2, "7 reservations at 5 per page")
        #expect(facts["pagedInstances"] as? Int == 7)
        #expect(facts["httpTokens"] as? String == "required")
        #expect(facts["expiresTag"] as? [String] == ["2026-11-23T12:00:00Z"])
        #expect(facts["terminateStates"] as? [String] == ["running", "shutting-down"])
        let motoFacts = fromMoto["facts"] as? [String: Any] ?? [:]
        #expect(facts["errors"] as? [String: String] == motoFacts["errors"] as? [String: String], "the same error codes as moto")
        #expect(facts["launchTags"] as? [[String]] == motoFacts["launchTags"] as? [[String]])
    }

    @Test(.timeLimit(.minutes(1))) func aWrongSecretIsRefusedAndNothingLaunches() async throws {
        let lab = try await Lab()
        defer { Task { await lab.server.close() } }
        do {
            _ = try await lab.client(secret: "wrong").describeInstances()
            Issue.record("a wrong secret was accepted")
        } catch let error as AWSError {
            #expect("\(error)".contains("SignatureDoesNotMatch"), "\(error)")
        }
        #expect(await lab.ec2.liveInstanceIDs.isEmpty)
    }

    @Test(.timeLimit(.minutes(1))) func aPersistentSpotRequestRelaunchesUntilCancelled() async throws {
        let lab = try await Lab()
        defer { Task { await lab.server.close() } }
        let api = lab.client()
        var spec = EC2LaunchSpec(imageID: "ami-0123456789abcdef0", instanceType: "g5.xlarge", clientToken: UUID().uuidString, tags: ["provision:pool": "gpu"])
        spec.spot = true
        spec.spotType = "persistent"
        let first = try #require(try await api.runInstances(spec).first)
        let request = try #require(first.spotRequestID)
        _ = try await api.terminateInstances(ids: [first.id])
        let replacement = try await api.liveInstances(tagged: ["provision:pool": "gpu"])
        #expect(replacement.count == 1 && replacement.first?.id != first.id, "terminating alone lets the open request relaunch: \(replacement)")
        try await api.cancelSpotInstanceRequests(ids: [request])
        _ = try await api.terminateInstances(ids: replacement.map(\.id))
        #expect(try await api.liveInstances(tagged: ["provision:pool": "gpu"]).isEmpty, "cancel first, then terminate: nothing left")
    }

    /// A root volume bigger than the AMI's 20 GiB gp2: the mapping names the AMI's root device, as
    /// moto also takes it; smaller than the AMI's snapshot is refused, as EC2 refuses it.
    @Test(.timeLimit(.minutes(1))) func theRootVolumeIsTheLaunchsMappingNeverSmallerThanTheAMIs() async throws {
        let lab = try await Lab()
        defer { Task { await lab.server.close() } }
        let api = lab.client()
        var spec = EC2LaunchSpec(imageID: "ami-0123456789abcdef0", instanceType: "g5.xlarge", clientToken: UUID().uuidString, tags: ["provision:pool": "gpu"])
        spec.rootVolumeGiB = 100
        let instance = try #require(try await api.runInstances(spec).first)
        let root = await lab.ec2.rootVolume(of: instance.id)
        #expect(root?.gib == 100 && root?.type == "gp3", "\(String(describing: root))")
        var plain = spec
        plain.clientToken = UUID().uuidString
        plain.rootVolumeGiB = nil
        let asRegistered = try #require(try await api.runInstances(plain).first)
        #expect(await lab.ec2.rootVolume(of: asRegistered.id)?.gib == 20, "without a mapping, the AMI's own 20 GiB")
        var small = spec
        small.clientToken = UUID().uuidString
        small.rootVolumeGiB = 10
        await #expect(throws: AWSError.self) { try await api.runInstances(small) }

        // moto, an independent EC2, takes the same request and makes a 100 GiB gp3 volume for it.
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        let ec2 = EC2Client(endpoint: moto.endpoint, region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDTEST", secretAccessKey: "secret"))
        var motoSpec = spec
        motoSpec.imageID = "ami-12c6146b"
        let launched = try #require(try await ec2.runInstances(motoSpec).first)
        let volumes = try await Subprocess.run(["python3", "-c", """
            import boto3, json
            ec2 = boto3.client("ec2", endpoint_url="\(moto.endpoint.absoluteString)", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            found = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": ["\(launched.id)"]}])["Volumes"]
            print(json.dumps([[v["Size"], v["VolumeType"], v["Attachments"][0]["Device"]] for v in found]))
            """])
        #expect(volumes.stdout.contains("[100, \"gp3\", \"/dev/xvda\"]"), "\(volumes.stdout)\(volumes.stderr)")
    }

    @Test(.timeLimit(.minutes(2))) func anInstanceBootsAsATalosWorkerFromItsUserData() async throws {
        let fixture = try LabFixture(nodes: ["cp1"])
        try await fixture.configure(["cp1"])
        let lab = try await Lab(cluster: fixture.cluster)
        defer { Task { await lab.server.close() } }
        let pool = try #require(fixture.inventory.gpuPools.first)
        let config = try fixture.renderer.yaml(fixture.renderer.target(pool: pool))
        var spec = EC2LaunchSpec(imageID: "ami-0123456789abcdef0", instanceType: "g5.xlarge", clientToken: UUID().uuidString, tags: ["provision:pool": "gpu"])
        spec.userData = try EC2UserData.encode(config)
        #expect(spec.userData!.count < config.utf8.count, "gzip'd: \(spec.userData!.count) base64 bytes for a \(config.utf8.count)-byte config")
        let (instance, launched) = try await lab.client().findOrLaunch(spec)
        #expect(launched)
        let address = try #require(instance.privateAddress)
        var worker = try TalosClient(host: address, mode: try fixture.admin)
        worker.timeout = .seconds(3)
        let status = try await eventually { () async throws -> MachineStatus in
            let status = try await worker.machineStatus()
            guard status.stage == .running else { throw PeerError("instance is \(status.stage)") }
            return status
        }
        #expect(status.stage == .running, "configured from user data with our cluster's CA")
        #expect(await lab.ec2.consoleProblem(of: instance.id) == nil)
        let (again, relaunched) = try await lab.client().findOrLaunch(spec)
        #expect(!relaunched && again.id == instance.id, "found by its tags, not launched twice")

        var broken = spec
        broken.clientToken = UUID().uuidString
        broken.tags = ["provision:pool": "other"]
        broken.userData = Data("not: [a talos config".utf8).base64EncodedString()
        let (bad, _) = try await lab.client().findOrLaunch(broken)
        #expect(await lab.ec2.consoleProblem(of: bad.id)?.contains("not a Talos machine config") == true)
    }

    @Test func userDataOverSixteenKilobytesIsRefusedBeforeAnyLaunch() throws {
        var random = SystemRandomNumberGenerator()
        let noise = (0..<40_000).map { _ in String(UnicodeScalar(UInt8.random(in: 97...122, using: &random))) }.joined()
        #expect(throws: EC2UserData.TooLarge.self) { try EC2UserData.encode("machine:\n  notes: \(noise)\n") }
        let small = try EC2UserData.encode("machine:\n  type: worker\n")
        #expect(EC2UserData.decode(small) == "machine:\n  type: worker\n")
    }
}
