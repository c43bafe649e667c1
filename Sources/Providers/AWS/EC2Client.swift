import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ProvisionCore

/// The five EC2 Query API calls provision needs, signed with our SigV4 signer. The endpoint is
/// overridable so the same code talks to AWS, moto and the lab.
public struct EC2Client: Sendable {
    public let endpoint: URL
    public let region: String
    let signer: SigV4Signer
    let http: HTTPClient
    public var timeout: TimeAmount = .seconds(30)
    static let apiVersion = "2016-11-15"

    public init(endpoint: URL, region: String, credentials: AWSCredentials, http: HTTPClient = .shared) {
        self.endpoint = endpoint
        self.region = region
        self.signer = SigV4Signer(credentials: credentials, region: region, service: "ec2")
        self.http = http
    }

    /// One signed POST; the reply's XML, or the EC2 error it carries.
    public func call(_ action: String, _ parameters: [(String, String)]) async throws -> XMLTree {
        try NetworkPolicy.check(host: endpoint.host ?? "", for: "EC2 API")
        let body = Self.formEncode([("Action", action), ("Version", Self.apiVersion)] + parameters)
        let host = endpoint.port.map { "\(endpoint.host ?? ""):\($0)" } ?? (endpoint.host ?? "")
        var signed = SigV4Signer.Request(method: "POST", path: endpoint.path.isEmpty ? "/" : endpoint.path,
                                         headers: [("Host", host), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                                         body: Data(body.utf8))
        signer.sign(&signed)
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        for (name, value) in signed.headers where name != "Host" { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: timeout) } catch {
            throw AWSError.transport("\(endpoint.absoluteString): \(error)")
        }
        let data = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
        let status = Int(response.status.code)
        guard status == 200 else {
            if let tree = try? XMLTree.parse(data), let error = tree.child("Errors")?.child("Error") ?? tree.child("Error") {
                throw AWSError.api(status: status, code: error.value("Code") ?? "Unknown", message: error.value("Message") ?? "")
            }
            throw AWSError.api(status: status, code: "HTTP\(status)", message: String(decoding: data.prefix(300), as: UTF8.self))
        }
        return try XMLTree.parse(data)
    }

    /// `application/x-www-form-urlencoded` as Python's `quote_plus` writes it (space as `+`): valid
    /// for AWS, and what moto re-encodes to before checking a signature.
    static func formEncode(_ parameters: [(String, String)]) -> String {
        func encode(_ text: String) -> String {
            var out = ""
            for byte in text.utf8 {
                if SigV4Signer.unreserved.contains(byte) { out.append(Character(UnicodeScalar(byte))) }
                else if byte == 0x20 { out += "+" }
                else { out += String(format: "%%%02X", byte) }
            }
            return out
        }
        return parameters.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }
}
