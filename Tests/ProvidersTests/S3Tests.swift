import Crypto
import Foundation
import ProvisionCore
import Testing
import TestSupport
@testable import Providers

/// Our S3 client against moto_server (an independent S3), with boto3 (the AWS SDK) reading back what
/// we wrote.
@Suite struct S3Tests {
    static func makeBucket(_ moto: MotoServer, _ bucket: String) async throws {
        let made = try await Subprocess.run(["python3", "-c", """
            import boto3
            boto3.client("s3", endpoint_url="\(moto.endpoint.absoluteString)", region_name="us-east-1",
                         aws_access_key_id="x", aws_secret_access_key="x").create_bucket(Bucket="\(bucket)")
            """])
        #expect(made.status == 0, "boto3 creates the bucket: \(made.stderr)")
    }

    func client(_ moto: MotoServer, bucket: String = "backups", secret: String = "secret") -> S3Client {
        S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: bucket, pathStyle: true,
                 credentials: AWSCredentials(accessKeyID: "AKIDTEST", secretAccessKey: secret))
    }

    @Test func putGetListDeleteAndConditionalWrites() async throws {
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        try await Self.makeBucket(moto, "backups")
        let s3 = client(moto)
        let etag = try await s3.put("prefix/set a/manifest.json", Data("{\"n\":1}".utf8))
        #expect(!etag.isEmpty)
        let got = try await s3.get("prefix/set a/manifest.json")
        #expect(got?.data == Data("{\"n\":1}".utf8), "a key with a space round-trips (signed as sent)")
        #expect(try await s3.get("prefix/none") == nil, "a missing key is nil, not an error")

        // boto3 sees the same object.
        let listed = try await Subprocess.run(["python3", "-c", """
            import boto3
            s3 = boto3.client("s3", endpoint_url="\(moto.endpoint.absoluteString)", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            print(s3.get_object(Bucket="backups", Key="prefix/set a/manifest.json")["Body"].read().decode())
            """])
        #expect(listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "{\"n\":1}")

        // Create-only: the second create is refused with 412; If-Match swaps only the current version.
        let lock = try await s3.put("lock", Data("a".utf8), condition: .absent)
        do {
            try await s3.put("lock", Data("b".utf8), condition: .absent)
            Issue.record("a second create of the same key succeeded")
        } catch let error as S3Error { #expect(error.isPreconditionFailed, "\(error)") }
        let swapped = try await s3.put("lock", Data("c".utf8), condition: .matches(lock))
        do {
            try await s3.put("lock", Data("d".utf8), condition: .matches(lock))
            Issue.record("a swap on a stale ETag succeeded")
        } catch let error as S3Error { #expect(error.isPreconditionFailed, "\(error)") }
        #expect(try await s3.get("lock")?.data == Data("c".utf8))
        #expect(try await s3.get("lock")?.etag == swapped)

        for index in 0..<3 { try await s3.put("many/\(index)", Data([UInt8(index)])) }
        #expect(try await s3.list(prefix: "many/").map(\.key) == ["many/0", "many/1", "many/2"])
        try await s3.delete("many/1")
        #expect(try await s3.list(prefix: "many/").map(\.key) == ["many/0", "many/2"])
    }

    @Test func largeFilesGoUpInPartsAndComeDownWhole() async throws {
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        try await Self.makeBucket(moto, "backups")
        var s3 = client(moto)
        s3.partSize = 5 << 20
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("s3-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var bytes = [UInt8](repeating: 0, count: (11 << 20) + 123)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 12) }
        let source = directory + "/big"
        _ = FileManager.default.createFile(atPath: source, contents: Data(bytes))
        let etag = try await s3.upload(file: source, key: "sets/big")
        #expect(etag.contains("-3"), "three parts: 5 + 5 + 1 MiB (multipart ETags end in -N): \(etag)")
        #expect(try await s3.openUploads(prefix: "sets/").isEmpty)

        let back = directory + "/back"
        let size = try await s3.download("sets/big", to: back)
        #expect(size == bytes.count)
        #expect(FileManager.default.contents(atPath: back) == Data(bytes))
        let mode = try FileManager.default.attributesOfItem(atPath: back)[.posixPermissions] as? Int
        #expect(mode == 0o600, "a downloaded backup is private")
        #expect(!FileManager.default.fileExists(atPath: back + ".part"))
    }

    @Test func aFailedMultipartUploadLeavesNothing() async throws {
        let moto = try await MotoServer()
        defer { Task { await moto.stop() } }
        try await Self.makeBucket(moto, "backups")
        var s3 = client(moto)
        // Parts under S3's 5 MiB minimum: the store refuses the completion (EntityTooSmall), as it
        // would a part lost in transit, and the upload must be aborted.
        s3.partSize = 1 << 20
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("s3-small-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 3 << 20))
        do {
            try await s3.upload(file: path, key: "sets/cut")
            Issue.record("an upload the store refused completed")
        } catch let error as S3Error {
            #expect(error.code == "EntityTooSmall", "\(error)")
        }
        #expect(try await s3.list(prefix: "sets/").isEmpty, "no partial object")
        #expect(try await s3.openUploads(prefix: "sets/").isEmpty, "no orphaned parts")
    }

    @Test func storeErrorsAreDecodedAndNameTheFix() async throws {
        let moto = try await MotoServer(authenticatedAfter: 3)
        defer { Task { await moto.stop() } }
        let parts = try await moto.makeUser(allowing: "s3:*", bucket: "backups")
        let credentials = AWSCredentials(accessKeyID: parts.accessKeyID, secretAccessKey: parts.secretAccessKey)
        let good = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: "backups", pathStyle: true, credentials: credentials)
        try await good.checkBucket()
        // A space is signed as sent (moto, like boto3 against it, cannot verify a `+` in a key).
        try await good.put("signed/with space", Data("x".utf8))

        let missing = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: "no-such-bucket", pathStyle: true, credentials: credentials)
        await #expect { try await missing.checkBucket() } throws: { error in
            guard let error = error as? S3Error else { return false }
            return error.code == "NoSuchBucket" && "\(error)".contains("backup.bucket") && !error.isTransient
        }
        let wrong = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: "backups", pathStyle: true,
                             credentials: AWSCredentials(accessKeyID: parts.accessKeyID, secretAccessKey: parts.secretAccessKey + "x"))
        do {
            try await wrong.put("k", Data("x".utf8))
            Issue.record("a wrong secret was accepted")
        } catch let error as S3Error {
            #expect(error.code == "SignatureDoesNotMatch", "\(error)")
            #expect(!"\(error)".contains(parts.secretAccessKey), "the secret never appears in an error")
        }
        var closed = S3Client(endpoint: URL(string: "http://127.0.0.1:1/")!, region: "us-east-1", bucket: "backups", pathStyle: true, credentials: credentials)
        closed.timeout = .seconds(2)
        do { try await closed.checkBucket(); Issue.record("a closed port answered") } catch let error as S3Error {
            #expect(error.isTransient)
            #expect("\(error)".contains("backup.endpoint"))
        }
    }
}
