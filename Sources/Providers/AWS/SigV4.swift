import Crypto
import Foundation

/// AWS credentials as the inventory's references resolve them. The secret never leaves this process
/// except as an HMAC.
public struct AWSCredentials: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// Signature Version 4 (headers variant), step by step as AWS documents it, checked against the
/// official test suite. Our own signer: the project does not pull in an AWS SDK for five EC2 calls.
public struct SigV4Signer: Sendable {
    public struct Request: Sendable {
        public var method: String
        /// The path as it would appear on the request line: not yet percent-encoded, except for S3,
        /// which signs the path exactly as sent (pass it encoded).
        public var path: String
        /// Raw query string without `?`, as sent.
        public var query: String
        /// Headers in order; repeated names allowed.
        public var headers: [(name: String, value: String)]
        public var body: Data

        public init(method: String, path: String = "/", query: String = "", headers: [(name: String, value: String)] = [], body: Data = Data()) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    public let credentials: AWSCredentials
    public let region: String
    public let service: String
    /// S3 signs the path exactly as sent (each segment encoded once, no dot or empty segments
    /// removed); every other service normalizes it first.
    public var normalizesPath: Bool { service != "s3" }

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// Adds `X-Amz-Date` (and the session token, when there is one) unless present, then
    /// `Authorization`, signing every header the request carries.
    public func sign(_ request: inout Request, date: Date = Date()) {
        if !request.headers.contains(where: { $0.name.lowercased() == "x-amz-date" }) {
            request.headers.append(("X-Amz-Date", Self.timestamp(date)))
        }
        if let token = credentials.sessionToken, !request.headers.contains(where: { $0.name.lowercased() == "x-amz-security-token" }) {
            request.headers.append(("X-Amz-Security-Token", token))
        }
        request.headers.append(("Authorization", authorization(request)))
    }

    /// The Authorization header value for `request` as it stands (it must carry `X-Amz-Date`).
    public func authorization(_ request: Request) -> String {
        let amzDate = request.headers.first { $0.name.lowercased() == "x-amz-date" }?.value ?? ""
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        let (_, signedHeaders) = canonicalHeaders(request.headers)
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign(request).utf8), using: signingKey(date: String(amzDate.prefix(8)))))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    public func stringToSign(_ request: Request) -> String {
        let amzDate = request.headers.first { $0.name.lowercased() == "x-amz-date" }?.value ?? ""
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        return ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Data(canonicalRequest(request).utf8)))].joined(separator: "\n")
    }

    public func canonicalRequest(_ request: Request) -> String {
        let (headers, signed) = canonicalHeaders(request.headers)
        // S3 carries the payload's hash in x-amz-content-sha256; the signature covers that value.
        let path = normalizesPath ? Self.canonicalPath(request.path) : request.path
        let payload = request.headers.first { $0.name.lowercased() == "x-amz-content-sha256" }?.value ?? hex(SHA256.hash(data: request.body))
        return [request.method, path, Self.canonicalQuery(request.query), headers, signed, payload].joined(separator: "\n")
    }

    func signingKey(date: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        return mac(mac(mac(mac(secret, date), region), service), "aws4_request")
    }

    /// Lowercased names, values trimmed with inner whitespace (and folded lines) collapsed, repeated
    /// headers joined with commas, sorted by name. Authorization itself is never signed.
    func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (String, String) {
        var values: [String: [String]] = [:]
        for (name, value) in headers where name.lowercased() != "authorization" {
            let collapsed = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
            values[name.lowercased(), default: []].append(collapsed)
        }
        let names = values.keys.sorted()
        let lines = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (lines, names.joined(separator: ";"))
    }

    /// Dot segments resolved, empty segments dropped, each segment RFC 3986-encoded; a trailing
    /// slash is kept.
    static func canonicalPath(_ path: String) -> String {
        var segments: [String] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(String(segment))
            }
        }
        var result = "/" + segments.map { uriEncode($0.removingPercentEncoding ?? $0) }.joined(separator: "/")
        if path.hasSuffix("/"), !segments.isEmpty { result += "/" }
        return result
    }

    /// Parameters decoded, re-encoded per RFC 3986, sorted by name then value.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (uriEncode(name), uriEncode(value))
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)

    static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) { out.append(Character(UnicodeScalar(byte))) } else { out += String(format: "%%%02X", byte) }
        }
        return out
    }

    func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
