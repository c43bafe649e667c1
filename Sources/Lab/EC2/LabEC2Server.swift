import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Providers

/// The lab's EC2 Query endpoint: plain HTTP on a loopback address (as moto serves), every request
/// checked for a valid SigV4 signature from the lab's key pair before it reaches `SimulatedEC2`.
public final class LabEC2Server: Sendable {
    let channel: Channel
    public let port: Int

    public init(host: String, port: Int, ec2: SimulatedEC2, credentials: AWSCredentials, region: String) async throws {
        let verifier = SigV4Verifier(credentials: credentials, region: region)
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EC2RequestHandler(ec2: ec2, verifier: verifier))
                }
            }
            .bind(host: host, port: port).get()
        self.port = channel.localAddress?.port ?? port
    }

    public func close() async { try? await channel.close() }
}

/// Collects one request, answers it, keeps the connection for the next (boto3 reuses connections).
final class EC2RequestHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on the channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let ec2: SimulatedEC2
    let verifier: SigV4Verifier
    private var head: HTTPRequestHead?
    private var body = Data()

    init(ec2: SimulatedEC2, verifier: SigV4Verifier) {
        self.ec2 = ec2
        self.verifier = verifier
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
            let body = self.body, ec2 = self.ec2, verifier = self.verifier
            let loop = context.eventLoop
            let bound = NIOLoopBound(context, eventLoop: loop)
            Task {
                let (status, xml) = await Self.answer(head: head, body: body, ec2: ec2, verifier: verifier)
                loop.execute { Self.write(bound.value, status: status, xml: xml, keepAlive: head.isKeepAlive) }
            }
        }
    }

    static func answer(head: HTTPRequestHead, body: Data, ec2: SimulatedEC2, verifier: SigV4Verifier) async -> (Int, String) {
        let requestID = UUID().uuidString.lowercased()
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        let query = parts.count > 1 ? String(parts[1]) : ""
        let headers = head.headers.map { ($0.name, $0.value) }
        if let failure = verifier.verify(method: head.method.rawValue, path: path, query: query, headers: headers, body: body) {
            return (failure.status, EC2XML.error(code: failure.code, message: failure.message, requestID: requestID))
        }
        let form = head.method == .POST ? String(decoding: body, as: UTF8.self) : query
        let parameters = QueryParameters(form: form)
        do {
            let (action, xml) = try await ec2.perform(parameters)
            return (200, EC2XML.response(action, requestID: requestID, xml))
        } catch {
            return (error.status, EC2XML.error(code: error.code, message: error.message, requestID: requestID))
        }
    }

    static func write(_ context: ChannelHandlerContext, status: Int, xml: String, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/xml;charset=UTF-8")
        headers.add(name: "Content-Length", value: "\(xml.utf8.count)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: xml)))), promise: nil)
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive { done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) } }
    }
}

extension SimulatedEC2 {
    /// Dispatches one Query action. Unknown actions are EC2's `InvalidAction`.
    func perform(_ p: QueryParameters) async throws(Failure) -> (String, [EC2XML]) {
        let action = try p.required("Action")
        switch action {
        case "RunInstances": return (action, try await runInstances(p))
        case "DescribeInstances": return (action, try describeInstances(p))
        case "TerminateInstances": return (action, try await terminateInstances(p))
        case "CreateTags": return (action, try createTags(p))
        case "CancelSpotInstanceRequests": return (action, try cancelSpotInstanceRequests(p))
        default: throw Failure(code: "InvalidAction", message: "The action \(action) is not valid for this web service.")
        }
    }
}
