import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request as the lab's HTTP endpoints see it: head, whole body, and the TLS client's identity
/// (certificate subject) when the endpoint checks one.
struct LabHTTPRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: Data
    var client: ClientIdentity?

    var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "/") }
    var query: String { uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
}

/// The verified client certificate's subject: CN is the user, O the groups (Kubernetes' convention).
struct ClientIdentity: Sendable, Equatable {
    var user: String
    var groups: [String]
}

struct LabHTTPResponse: Sendable {
    var status: Int
    var contentType: String
    var body: Data
    /// A streamed body (a Kubernetes watch): sent chunk by chunk as it comes, chunked transfer
    /// encoding, until the stream ends or the client goes away.
    var stream: AsyncStream<Data>? = nil
}

/// HTTP/1.1 on a loopback address for the lab's endpoints (EC2, Kubernetes), optionally behind a
/// TLS handler the caller adds per connection; each request is answered by an async responder.
final class LabHTTPServer: Sendable {
    typealias Responder = @Sendable (LabHTTPRequest) async -> LabHTTPResponse
    /// Adds TLS to a new connection and returns where the handshake leaves the client's identity.
    typealias Security = @Sendable (any Channel) throws -> NIOLockedValueBox<ClientIdentity?>

    let channel: any Channel
    let port: Int
    let gate = LabGate()

    init(host: String, port: Int, security: Security? = nil, respond: @escaping Responder) async throws {
        let gate = self.gate
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard gate.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let identity = try security?(channel) ?? NIOLockedValueBox(nil)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(LabHTTPHandler(identity: identity, respond: respond))
                }
            }
            .bind(host: host, port: port).get()
        self.port = channel.localAddress?.port ?? port
    }

    func close() async { try? await channel.close() }
}

/// Whether anyone answers at the server's address: a shared address nobody holds answers nothing,
/// so connections are cut as they arrive; when it moves to another machine, the connections made
/// to the old one are cut too (the new holder knows nothing of them).
final class LabGate: Sendable {
    private let state = NIOLockedValueBox<(open: Bool, channels: [ObjectIdentifier: any Channel])>((true, [:]))

    func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let open = state.withLockedValue { state -> Bool in
            if state.open { state.channels[id] = channel }
            return state.open
        }
        if open { channel.closeFuture.whenComplete { [weak self] _ in self?.state.withLockedValue { _ = $0.channels.removeValue(forKey: id) } } }
        return open
    }

    /// Opens or shuts the address; `cut`: close every connection made so far.
    func set(open: Bool, cut: Bool) {
        let doomed = state.withLockedValue { state -> [any Channel] in
            state.open = open
            guard cut || !open else { return [] }
            defer { state.channels = [:] }
            return Array(state.channels.values)
        }
        for channel in doomed { channel.close(promise: nil) }
    }
}

/// Collects one request, answers it, keeps the connection for the next (clients reuse connections).
final class LabHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: mutable state is touched only on the channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let identity: NIOLockedValueBox<ClientIdentity?>
    let respond: LabHTTPServer.Responder
    private var head: HTTPRequestHead?
    private var body = Data()

    init(identity: NIOLockedValueBox<ClientIdentity?>, respond: @escaping LabHTTPServer.Responder) {
        self.identity = identity
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            head = request
            body = Data()
        case var .body(buffer):
            body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end:
            guard let head else { return }
            let request = LabHTTPRequest(method: head.method, uri: head.uri, headers: head.headers, body: body,
                                         client: identity.withLockedValue { $0 })
            let respond = self.respond, loop = context.eventLoop, bound = NIOLoopBound(context, eventLoop: loop)
            let channel = context.channel
            Task {
                let response = await respond(request)
                guard let stream = response.stream else {
                    loop.execute { Self.write(bound.value, response, keepAlive: head.isKeepAlive) }
                    return
                }
                let sending = Task {
                    loop.execute { Self.writeHead(bound.value, response, keepAlive: head.isKeepAlive) }
                    for await chunk in stream {
                        loop.execute { bound.value.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil) }
                    }
                    loop.execute { Self.end(bound.value, keepAlive: head.isKeepAlive) }
                }
                // A client that hangs up ends its stream (and the store forgets the watch).
                channel.closeFuture.whenComplete { _ in sending.cancel() }
            }
        }
    }

    static func write(_ context: ChannelHandlerContext, _ response: LabHTTPResponse, keepAlive: Bool) {
        writeHead(context, response, keepAlive: keepAlive)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        end(context, keepAlive: keepAlive)
    }

    /// The head; without Content-Length when the body is streamed (NIO then sends it chunked).
    static func writeHead(_ context: ChannelHandlerContext, _ response: LabHTTPResponse, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        if response.stream == nil { headers.add(name: "Content-Length", value: "\(response.body.count)") }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
    }

    static func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }
}
