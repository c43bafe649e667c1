import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ProvisionCore

/// HTTPS/1.1 to a server trusted only by the SHA-256 fingerprint of its certificate (DER), as PVE's
/// own client pins it: no "accept any", no hostname check, and the pin is checked inside the handshake
/// of the very connection that carries the request. One connection per request.
public struct PinnedHTTPS: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var reason: String
        public var body: Data
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public let pinMismatch: Bool
    }

    public let host: String
    public let port: Int
    /// Uppercase colon-separated hex, e.g. `AB:CD:...` (32 bytes).
    public let fingerprint: String
    public var timeout: TimeAmount = .seconds(30)

    public init(host: String, port: Int, fingerprint: String) {
        self.host = host
        self.port = port
        self.fingerprint = fingerprint.uppercased()
    }

    static func fingerprint(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes() else { return nil }
        return SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    public func send(method: HTTPMethod, path: String, headers: [(String, String)], body: Data?) async throws -> Response {
        try NetworkPolicy.check(host: host, for: "Proxmox API")
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // Verification stays on so NIOSSL calls our callback, which replaces chain checking with the pin.
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let pin = fingerprint
        // The fingerprint the server showed, kept for the error message.
        let seen = NIOLockedValueBox<String?>(nil)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
                        let actual = certificates.first.flatMap(Self.fingerprint(of:))
                        seen.withLockedValue { $0 = actual }
                        promise.succeed(actual == pin ? .certificateVerified : .failed)
                    }
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await bootstrap.connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            throw Failure(description: "cannot connect to \(host):\(port): \(error)", pinMismatch: false)
        }
        do {
            return try await withThrowingTaskGroup(of: Response.self) { group in
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                        head.headers.add(name: "Host", value: "\(host):\(port)")
                        head.headers.add(name: "Connection", value: "close")
                        for (name, value) in headers { head.headers.add(name: name, value: value) }
                        if let body { head.headers.add(name: "Content-Length", value: "\(body.count)") }
                        // One write: a server may answer and close as soon as it has the request head.
                        var parts: [HTTPClientRequestPart] = [.head(head)]
                        if let body { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                        parts.append(.end(nil))
                        try await outbound.write(contentsOf: parts)
                        var response = Response(status: 0, reason: "", body: Data())
                        for try await part in inbound {
                            switch part {
                            case let .head(head):
                                response.status = Int(head.status.code)
                                response.reason = head.status.reasonPhrase
                            case var .body(buffer):
                                response.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
                            case .end: return response
                            }
                        }
                        return response
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                    throw Failure(description: "\(method) \(path) on \(host):\(port) timed out", pinMismatch: false)
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            if let actual = seen.withLockedValue({ $0 }), actual != pin {
                throw Failure(description: "the server at \(host):\(port) presented certificate \(actual), not the pinned \(pin); refusing it (update the inventory's fingerprint only if the server's certificate really changed)", pinMismatch: true)
            }
            throw Failure(description: "\(method) \(path) on \(host):\(port) failed: \(error)", pinMismatch: false)
        }
    }
}
