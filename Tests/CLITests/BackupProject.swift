import Foundation
import ProvisionCore
import Testing
import TestSupport

/// The demo project with a `backup:` section pointing at a moto_server bucket (or a proxy in front
/// of it), an age identity of its own, and boto3 to look into the bucket as the AWS SDK sees it.
struct BackupProject {
    let project: DemoProject
    let bucket: String
    let identityPath: String
    let recipient: String

    init(endpoint: URL, bucket: String = "demo-backups", keepLast: Int = 3, secret: String = "moto-secret", accessKey: String = "AKIDDEMO") async throws {
        project = try DemoProject()
        self.bucket = bucket
        identityPath = project.dir + "/backup-identity.txt"
        let made = try await Subprocess.run(["age-keygen", "-o", identityPath])
        guard made.status == 0 else { throw DemoProject.CLIError("age-keygen: \(made.stderr)") }
        recipient = try await Subprocess.run(["age-keygen", "-y", identityPath]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try PrivateFile.write(Array(accessKey.utf8), to: project.dir + "/lab/s3-access-key")
        try PrivateFile.write(Array(secret.utf8), to: project.dir + "/lab/s3-secret-key")
        let section = """

            backup:
              endpoint: \(endpoint.absoluteString)
              region: us-east-1
              bucket: \(bucket)
              pathStyle: true
              accessKeyID: file:../lab/s3-access-key
              secretAccessKey: file:../lab/s3-secret-key
              recipients: [\(recipient)]
              identity: file:../backup-identity.txt
              retention: {keepLast: \(keepLast), keepDaily: 0}
              schedule: "0 3 * * *"

            """
        try project.edit { $0 + section }
    }

    /// Runs Python with boto3 against `endpoint`; `s3` and `bucket` are defined for the script.
    static func boto3(_ endpoint: URL, bucket: String, _ script: String) async throws -> Subprocess.Result {
        try await Subprocess.run(["python3", "-c", """
            import boto3, json, sys
            s3 = boto3.client("s3", endpoint_url="\(endpoint.absoluteString)", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            bucket = "\(bucket)"
            """ + "\n" + script])
    }

    static func makeBucket(_ endpoint: URL, _ bucket: String) async throws {
        let made = try await boto3(endpoint, bucket: bucket, "s3.create_bucket(Bucket=bucket)")
        #expect(made.status == 0, "boto3 (scripts/bootstrap installs it) creates the bucket: \(made.stderr)")
    }

    /// Every key in the bucket, as boto3 lists it.
    static func keys(_ endpoint: URL, _ bucket: String) async throws -> [String] {
        let listed = try await boto3(endpoint, bucket: bucket, "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=bucket).get('Contents', [])]))")
        return (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String]) ?? []
    }

    /// The set names in the bucket, in S3's order (newest first by design).
    static func sets(_ endpoint: URL, _ bucket: String) async throws -> [String] {
        var names: [String] = []
        for key in try await keys(endpoint, bucket) where key.hasPrefix("backups/") {
            let name = String(key.dropFirst("backups/".count).prefix { $0 != "/" })
            if names.last != name { names.append(name) }
        }
        return names
    }
}
