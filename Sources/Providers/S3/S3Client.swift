import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import ProvisionCore

/// The S3 calls backups and shared state need, signed with our SigV4 signer: put (optionally
/// conditional), get, streamed download, multipart upload of a file, list, delete. It speaks to
/// any S3-compatible store (R2, MinIO, B2, AWS) at `endpoint`, path-style or virtual-hosted.
public struct S3Client: Sendable {
    public struct Object: Sendable, Equatable {
        public var key: String
        public var size: Int
        public var etag: String
        public var lastModified: Date?
    }

    /// A write's precondition: S3's conditional writes, the basis of the lock object.
    public enum Condition: Sendable, Equatable {
        case none
        /// Create only: refused (412) if the key exists.
        case absent
        /// Replace only this version: refused (412) if the object's ETag changed.
        case matches(String)
    }

    public let endpoint: URL
    public let region: String
    public let bucket: String
    public let pathStyle: Bool
    let signer: SigV4Signer
    let http: HTTPClient
    public var timeout: TimeAmount = .seconds(60)
    /// Files larger than this go up in parts of this size (S3's minimum part is 5 MiB), so memory
    /// stays one part whatever the file's size.
    public var partSize = 8 << 20

    public init(endpoint: URL, region: String, bucket: String, pathStyle: Bool, credentials: AWSCredentials, http: HTTPClient = .shared) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.pathStyle = pathStyle
        self.signer = SigV4Signer(credentials: credentials, region: region, service: "s3")
        self.http = http
    }

    /// `s3://bucket/key` for messages.
    public func describe(_ key: String?) -> String { "s3://\(bucket)/\(key ?? "")" }

    // MARK: - Objects

    /// Writes a small object; its new ETag. A failed condition throws `S3Error` with
    /// `isPreconditionFailed`.
    @discardableResult
    public func put(_ key: String, _ data: Data, condition: Condition = .none, contentType: String = "application/octet-stream") async throws -> String {
        var headers: [(String, String)] = [("Content-Type", contentType)]
        switch condition {
        case .none: break
        case .absent: headers.append(("If-None-Match", "*"))
        case let .matches(etag): headers.append(("If-Match", etag))
        }
        let reply = try await send("PUT", key: key, headers: headers, body: data)
        return reply.headers.first(name: "etag") ?? ""
    }

    /// A small object and its ETag; nil when there is no such key.
    public func get(_ key: String) async throws -> (data: Data, etag: String)? {
        do {
            let reply = try await send("GET", key: key)
            return (reply.body, reply.headers.first(name: "etag") ?? "")
        } catch let error as S3Error where error.code == "NoSuchKey" {
            return nil
        }
    }

    public func delete(_ key: String) async throws {
        _ = try await send("DELETE", key: key)
    }

    /// Every object under `prefix`, in S3's order (ascending by key), across pages.
    public func list(prefix: String) async throws -> [Object] {
        var objects: [Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let tree = try XMLTree.parse(try await send("GET", key: nil, query: query).body)
            for item in tree.all("Contents") {
                objects.append(Object(key: item.value("Key") ?? "", size: Int(item.value("Size") ?? "") ?? 0, etag: item.value("ETag") ?? "",
                                      lastModified: item.value("LastModified").flatMap(Self.parseDate)))
            }
            token = tree.value("IsTruncated") == "true" ? tree.value("NextContinuationToken") : nil
        } while token != nil
        return objects
    }

    /// Multipart uploads begun under `prefix` and never completed or aborted (their parts cost
    /// storage and are invisible to `list`).
    public func openUploads(prefix: String) async throws -> [(key: String, uploadID: String)] {
        let tree = try XMLTree.parse(try await send("GET", key: nil, query: [("uploads", ""), ("prefix", prefix)]).body)
        return tree.all("Upload").map { ($0.value("Key") ?? "", $0.value("UploadId") ?? "") }
    }

    /// Answers whether the bucket exists and the keys may use it, with S3's own error otherwise.
    /// A short deadline: it is the first call of a backup, and a wrong endpoint should say so soon.
    public func checkBucket() async throws {
        var quick = self
        quick.timeout = .seconds(5)
        _ = try await quick.send("GET", key: nil, query: [("list-type", "2"), ("max-keys", "1")])
    }

    // MARK: - Files, streamed

    /// Uploads a file without holding it whole: one PUT up to `partSize`, else a multipart upload
    /// that is aborted on any failure, so no partial object (nor orphaned parts) stays behind.
    @discardableResult
    public func upload(file path: String, key: String, progress: (@Sendable (Int) -> Void)? = nil) async throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw S3Error.malformed("cannot read \(path)") }
        defer { try? handle.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if size <= partSize {
            let etag = try await put(key, try handle.readToEnd() ?? Data())
            progress?(size)
            return etag
        }
        let created = try XMLTree.parse(try await send("POST", key: key, query: [("uploads", "")]).body)
        guard let uploadID = created.value("UploadId"), !uploadID.isEmpty else { throw S3Error.malformed("CreateMultipartUpload gave no UploadId") }
        do {
            var parts: [(Int, String)] = []
            var sent = 0
            while let chunk = try handle.read(upToCount: partSize), !chunk.isEmpty {
                let number = parts.count + 1
                let reply = try await send("PUT", key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)], body: chunk)
                parts.append((number, reply.headers.first(name: "etag") ?? ""))
                sent += chunk.count
                progress?(sent)
            }
            let body = "<CompleteMultipartUpload>" + parts.map { "<Part><PartNumber>\($0.0)</PartNumber><ETag>\($0.1)</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            let reply = try await send("POST", key: key, query: [("uploadId", uploadID)], headers: [("Content-Type", "application/xml")], body: Data(body.utf8))
            // S3 may answer 200 and still fail the completion, in the body.
            let tree = try XMLTree.parse(reply.body)
            if tree.name == "Error" { throw S3Error.api(status: 200, code: tree.value("Code") ?? "Unknown", message: tree.value("Message") ?? "", resource: describe(key)) }
            return tree.value("ETag") ?? ""
        } catch {
            _ = try? await send("DELETE", key: key, query: [("uploadId", uploadID)])
            throw error
        }
    }

    /// Streams an object to `path` through `path.part` (0600), renamed only when whole; its size.
    @discardableResult
    public func download(_ key: String, to path: String) async throws -> Int {
        let partial = path + ".part"
        let response = try await execute("GET", key: key)
        guard response.status == .ok else { throw try await failure(response, key: key) }
        guard FileManager.default.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: partial) else { throw S3Error.malformed("cannot write \(partial)") }
        var size = 0
        do {
            for try await buffer in response.body {
                try handle.write(contentsOf: Data(buffer.readableBytesView))
                size += buffer.readableBytes
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw S3Error.transport(endpoint: endpoint.absoluteString, reason: "download of \(key) broke off: \(error)")
        }
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return size
    }

    // MARK: - Requests

    struct Reply {
        var headers: HTTPHeaders
        var body: Data
    }

    func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [], body: Data = Data()) async throws -> Reply {
        let response = try await execute(method, key: key, query: query, headers: headers, body: body)
        guard (200..<300).contains(Int(response.status.code)) else { throw try await failure(response, key: key) }
        return Reply(headers: response.headers, body: Data(try await response.body.collect(upTo: 64 << 20).readableBytesView))
    }

    func execute(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [], body: Data = Data()) async throws -> HTTPClientResponse {
        guard let host = endpoint.host else { throw S3Error.malformed("endpoint \(endpoint) has no host") }
        try NetworkPolicy.check(host: pathStyle ? host : "\(bucket).\(host)", for: "S3 store")
        let authority = (pathStyle ? host : "\(bucket).\(host)") + (endpoint.port.map { ":\($0)" } ?? "")
        let base = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
        let path = base + (pathStyle ? "/" + bucket : "") + "/" + (key.map(Self.encodeKey) ?? "")
        let queryText = query.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
        var signed = SigV4Signer.Request(method: method, path: path, query: queryText,
                                         headers: [("Host", authority), ("X-Amz-Content-SHA256", signer.hex(SHA256.hash(data: body)))] + headers,
                                         body: body)
        signer.sign(&signed)
        var request = HTTPClientRequest(url: "\(endpoint.scheme ?? "https")://\(authority)\(path)" + (queryText.isEmpty ? "" : "?\(queryText)"))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed.headers where name != "Host" { request.headers.add(name: name, value: value) }
        if !body.isEmpty || method == "PUT" || method == "POST" { request.body = .bytes(ByteBuffer(bytes: body)) }
        do { return try await http.execute(request, timeout: timeout) } catch {
            throw S3Error.transport(endpoint: endpoint.absoluteString, reason: "\(error)")
        }
    }

    /// S3's error from a reply's XML body; HEAD-like replies without one get a code from the status.
    func failure(_ response: HTTPClientResponse, key: String?) async throws -> S3Error {
        let status = Int(response.status.code)
        let data = Data((try? await response.body.collect(upTo: 1 << 20))?.readableBytesView ?? ByteBuffer().readableBytesView)
        let resource = describe(key)
        if let tree = try? XMLTree.parse(data), tree.name == "Error" {
            return .api(status: status, code: tree.value("Code") ?? "HTTP\(status)", message: tree.value("Message") ?? "", resource: resource)
        }
        let code = [403: "AccessDenied", 404: key == nil ? "NoSuchBucket" : "NoSuchKey", 412: "PreconditionFailed"][status] ?? "HTTP\(status)"
        return .api(status: status, code: code, message: String(decoding: data.prefix(200), as: UTF8.self), resource: resource)
    }

    /// Each segment RFC 3986-encoded once, as S3 signs and serves it.
    static func encodeKey(_ key: String) -> String {
        key.split(separator: "/", omittingEmptySubsequences: false).map { SigV4Signer.uriEncode(String($0)) }.joined(separator: "/")
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
