import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// moto_server (PyPI moto[server], installed by scripts/bootstrap): an independent EC2 endpoint on
/// a loopback address of its own. With `authenticatedAfter` set, moto checks signatures once that
/// many unauthenticated calls (used to create an IAM user and key) have been made.
public final class MotoServer: Sendable {
    let server: BackgroundProcess
    public let host: String
    public let port = 5000
    public var endpoint: URL { URL(string: "http://\(host):\(port)/")! }

    public init(authenticatedAfter: Int? = nil) async throws {
        let host = Loopback.address()
        self.host = host
        server = try await BackgroundProcess(["moto_server", "-H", host, "-p", "5000"],
                                             environment: authenticatedAfter.map { ["INITIAL_NO_AUTH_ACTION_COUNT": "\($0)"] } ?? [:])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if TCPProbe.answers(host: host, port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw PeerError("moto_server did not start on \(host):\(port) (moto[server] comes from scripts/bootstrap)")
    }

    public func stop() async { await server.stop() }

    /// On a moto with `authenticatedAfter: 3`: the three unauthenticated IAM calls (boto3, the real
    /// AWS SDK) that make a user allowed `action` (`ec2:*`, `s3:*`), then, signed with its new key,
    /// `bucket` created. The key pair.
    public func makeUser(allowing action: String, bucket: String? = nil) async throws -> (accessKeyID: String, secretAccessKey: String) {
        let setup = try await Subprocess.run(["python3", "-c", """
            import boto3, json
            iam = boto3.client("iam", endpoint_url="\(endpoint.absoluteString)", region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
            iam.create_user(UserName="provision")
            key = iam.create_access_key(UserName="provision")["AccessKey"]
            iam.put_user_policy(UserName="provision", PolicyName="access", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "\(action)", "Resource": "*"}]}))
            bucket = "\(bucket ?? "")"
            if bucket:
                boto3.client("s3", endpoint_url="\(endpoint.absoluteString)", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                             aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket=bucket)
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """])
        let parts = setup.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard setup.status == 0, parts.count == 2 else { throw PeerError("no IAM key from moto (boto3 comes from scripts/bootstrap): \(setup.stderr)") }
        return (parts[0], parts[1])
    }
}
