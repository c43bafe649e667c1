import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import Providers

/// Our EC2 client against moto_server, an independent implementation of the EC2 Query API.
@Suite struct EC2Tests {
    static let tags = ["provision:cluster": "demo", "provision:pool": "gpu", "provision:owner": "test", "provision:expires-at": "2026-11-23T08:00:00Z"]

    func spec(_ token: String) -> EC2LaunchSpec {
        var spec = EC2LaunchSpec(imageID: "ami-12c6146b", instanceType: "g4dn.xlarge", clientToken: token, tags: Self.tags)
        spec.userData = Data("machine:\n  type: worker\n".utf8).base64EncodedString()
        spec.spot = true
        return spec
    }

    @Test func launchDescribeRelaunchTerminate() async throws {
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        let ec2 = EC2Client(endpoint: moto.endpoint, region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDTEST", secretAccessKey: "secret"))

        let (first, launched) = try await ec2.findOrLaunch(spec("launch-1"))
        #expect(launched)
        #expect(first.id.hasPrefix("i-"))
        #expect(first.tags == Self.tags, "tags applied at launch")
        #expect(first.type == "g4dn.xlarge")

        let found = try await ec2.liveInstances(tagged: Self.tags)
        #expect(found.map(\.id) == [first.id])
        #expect(found.first?.state == "running")

        // The same logical launch again (cron firing twice): found, not launched.
        let (second, launchedAgain) = try await ec2.findOrLaunch(spec("launch-1"))
        #expect(!launchedAgain)
        #expect(second.id == first.id)
        #expect(try await ec2.describeInstances().count == 1, "still exactly one instance")

        // Another pool's tags do not match.
        #expect(try await ec2.liveInstances(tagged: ["provision:pool": "other"]).isEmpty)

        let states = try await ec2.terminateInstances(ids: [first.id])
        #expect(states[first.id] == "shutting-down")
        #expect(try await ec2.liveInstances(tagged: Self.tags).isEmpty, "nothing tagged for the pool still runs")
        try await ec2.createTags(ids: [first.id], tags: ["provision:swept": "yes"])
    }

    @Test func errorsAreTypedAndClassified() async throws {
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        let ec2 = EC2Client(endpoint: moto.endpoint, region: "us-east-1", credentials: AWSCredentials(accessKeyID: "AKIDTEST", secretAccessKey: "secret"))
        do {
            _ = try await ec2.terminateInstances(ids: ["i-0123456789abcdef0"])
            Issue.record("terminating a missing instance succeeded")
        } catch let error as AWSError {
            #expect(error.code == "InvalidInstanceID.NotFound")
            #expect(error.isTransient, "eventual consistency right after a launch: retried")
        }
        var bad = spec("bad-subnet")
        bad.subnetID = "subnet-doesnotexist"
        await #expect(throws: AWSError.self) { try await ec2.runInstances(bad) }

        // AsyncHTTPClient keeps retrying a refused connection until the request's deadline.
        var closed = EC2Client(endpoint: URL(string: "http://127.0.0.1:1/")!, region: "us-east-1",
                               credentials: AWSCredentials(accessKeyID: "A", secretAccessKey: "B"))
        closed.timeout = .seconds(2)
        do { _ = try await closed.describeInstances(); Issue.record("a closed port answered") } catch let error as AWSError {
            #expect(error.isTransient)
        }
    }

    /// moto with signature checks on: a key created through IAM works, the wrong secret is refused.
    @Test func signaturesAreCheckedAndAWrongSecretIsRefused() async throws {
        let moto = try await MotoServer(authenticatedAfter: 3)
        defer { Task { await moto.stop() } }
        let parts = try await moto.makeUser(allowing: "ec2:*")

        let good = EC2Client(endpoint: moto.endpoint, region: "us-east-1", credentials: AWSCredentials(accessKeyID: parts.accessKeyID, secretAccessKey: parts.secretAccessKey))
        // Values with spaces and symbols: the body encoding and the signature must agree.
        var withSpaces = spec("signed")
        withSpaces.tags["Name"] = "gpu worker & friends = 1+1/2"
        let (instance, _) = try await good.findOrLaunch(withSpaces)
        #expect(try await good.describeInstances(ids: [instance.id]).count == 1)

        let wrong = EC2Client(endpoint: moto.endpoint, region: "us-east-1", credentials: AWSCredentials(accessKeyID: parts.accessKeyID, secretAccessKey: parts.secretAccessKey + "x"))
        do {
            _ = try await wrong.describeInstances()
            Issue.record("a wrong secret was accepted")
        } catch let error as AWSError {
            #expect(error.code == "AuthFailure", "\(error)")
            #expect(!error.isTransient)
            #expect(!"\(error)".contains(parts.secretAccessKey), "the secret never appears in an error")
        }
    }
}
