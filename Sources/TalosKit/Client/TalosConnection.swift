import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import ProvisionCore

/// One long-lived gRPC channel to a node, shared by every call made through it, so a step that polls
/// pays the TLS handshake once. gRPC reconnects by itself when the node restarts its API; the backoff
/// is short because a Talos reboot takes seconds, not minutes. The channel shuts down when the last
/// reference goes or `close()` is called.
public final class TalosConnection: Sendable {
    public let host: String
    public let port: Int
    /// What this connection's handshakes showed and the identity it settled on (maintenance and
    /// identify modes; configured connections are checked by BoringSSL against the OS CA).
    public let handshake: TalosHandshake
    let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let runner: Task<Void, Never>

    public init(host: String, port: Int = 50000, mode: TalosTLS.Mode) throws {
        try NetworkPolicy.check(host: host, for: "Talos API")
        self.host = host
        self.port = port
        let handshake = TalosHandshake(try TalosTLS.acceptance(mode) ?? .maintenanceOrOurs(ca: nil))
        self.handshake = handshake
        let context = try TalosTLS.context(mode, handshake: handshake)
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Reconnects to a rebooting node at most a quarter second apart: a wait notices it is back
        // within 250 ms, as it does every other condition (a connect attempt costs one SYN).
        config.backoff = .init(initial: .milliseconds(50), max: .milliseconds(250), multiplier: 1.6, jitter: 0.2)
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try TalosTLS.handler(context, mode: mode, handshake: handshake), position: .first)
                try channel.pipeline.syncOperations.addHandler(ConnectionObserver(handshake), position: .first)
            }
        }
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host, port: port), transportSecurity: .customSecure, config: config)
        let grpc = GRPCClient(transport: transport)
        self.grpc = grpc
        runner = Task { try? await grpc.runConnections() }
    }

    /// Stops accepting calls; calls in flight finish.
    public func close() { grpc.beginGracefulShutdown() }

    deinit { grpc.beginGracefulShutdown() }
}
