import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ProvisionCore
import Synchronization

/// An API server's refusal: its `Status` reason and message, classified for retries (conflicts on
/// optimistic concurrency, throttling, 5xx and transport failures are transient).
public struct KubeError: ClassifiedError, CustomStringConvertible, Sendable {
    public let status: Int
    public let reason: String
    public let message: String
    public let operation: String

    public var isTransient: Bool { status == 0 || status == 429 || status >= 500 }
    public var notFound: Bool { status == 404 }
    public var conflict: Bool { status == 409 }
    public var description: String {
        let code = status == 0 ? "" : " (HTTP \(status)\(reason.isEmpty ? "" : " \(reason)"))"
        return "Kubernetes \(operation): \(message)\(code)"
    }
}

extension KubeError {
    /// The refusal a `Status` object carries (a non-2xx reply's body, or a watch's ERROR event).
    init(status code: Int, _ object: JSON?, operation: String) {
        self.init(status: code, reason: object?["reason"]?.string ?? "",
                  message: object?["message"]?.string ?? "HTTP \(code)", operation: operation)
    }
}

/// HTTPS to one API server with the kubeconfig's CA and client certificate. The server certificate
/// is verified against the cluster CA, hostname or IP SAN included. Call `shutdown()` when done.
public final class KubeClient: Sendable {
    let http: HTTPClient
    public let config: Kubeconfig
    public let discovery: Discovery
    public let timeout: TimeAmount = .seconds(30)
    /// The resourceVersion each look (`get`, `list`) last saw, by `lookKey`: where a wait's watch starts.
    private let seen = Mutex<[String: SeenVersion]>([:])

    public init(config: Kubeconfig) throws {
        try NetworkPolicy.check(host: config.server.host ?? "", for: "Kubernetes API")
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(config.caPEM.utf8)))
        if let certificate = config.certificatePEM, let key = config.keyPEM {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
        }
        // A cancelled watch closes its connection; TLS would wait up to 5 s for the server's
        // close_notify, keeping the connection (one of the pool's few per host) and the server's
        // stream busy, and the client's shutdown waiting, for nothing.
        tls.shutdownTimeout = .milliseconds(100)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.config = config
        discovery = Discovery()
    }

    public func shutdown() async { try? await http.shutdown() }

    func noteSeen(_ key: String, _ version: SeenVersion?) {
        seen.withLock { $0[key] = version }
    }

    func seenVersion(_ key: String) -> SeenVersion? { seen.withLock { $0[key] } }

    /// A request to the API server with the headers every call carries (JSON, who we are, the token).
    func request(_ method: HTTPMethod, _ path: String, _ query: [(String, String)]) -> HTTPClientRequest {
        var components = URLComponents()
        components.path = path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        var request = HTTPClientRequest(url: config.server.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + (components.string ?? path))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "provision")
        if let token = config.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// One call; the reply's JSON (or `.null` for an empty body). Non-2xx replies throw `KubeError`.
    public func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSON? = nil,
                     contentType: String = "application/json") async throws -> JSON {
        let (status, reply) = try await raw(method, path, query: query, body: body, contentType: contentType)
        guard (200..<300).contains(status) else {
            throw KubeError(status: status, reply, operation: "\(method) \(path)")
        }
        return reply
    }

    /// One call without judging the status (eviction answers 429 on purpose).
    public func raw(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSON? = nil,
                    contentType: String = "application/json") async throws -> (Int, JSON) {
        var request = request(method, path, query)
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body.data()))
        }
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: timeout) } catch {
            throw KubeError(status: 0, reason: "", message: "\(config.server.absoluteString) did not answer: \(error)", operation: "\(method) \(path)")
        }
        let data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        let reply = data.isEmpty ? JSON.null : ((try? JSON.parse(data)) ?? .string(String(decoding: data, as: UTF8.self)))
        return (Int(response.status.code), reply)
    }
}
