import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import SwiftProtobuf

/// A connection to one Talos node's API (port 50000), in maintenance or configured (mTLS) mode.
/// Every call carries a deadline; the receive limit is raised to Talos' 32 MiB.
public struct TalosClient: Sendable {
    public let host: String
    public let port: Int
    public let mode: TalosTLS.Mode
    public var timeout: Duration = .seconds(10)

    public init(host: String, port: Int = 50000, mode: TalosTLS.Mode) {
        self.host = host
        self.port = port
        self.mode = mode
    }

    /// Runs `body` with a connected MachineService client; the connection closes afterwards.
    public func withMachine<Result: Sendable>(_ body: (Machine_MachineService.Client<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
        let context = try TalosTLS.context(mode)
        let mode = self.mode
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.http2.maxFrameSize = 1 << 20
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try TalosTLS.handler(context, mode: mode), position: .first)
            }
        }
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host, port: port), transportSecurity: .customSecure, config: config)
        return try await withGRPCClient(transport: transport) { grpc in
            try await body(Machine_MachineService.Client(wrapping: grpc))
        }
    }

    var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.maxResponseMessageBytes = 32 << 20
        return options
    }

    /// The node's Talos version, platform and whether it runs with a machine config (RBAC on).
    public func version() async throws -> Machine_Version {
        try await withMachine { machine in
            let response = try await machine.version(Google_Protobuf_Empty(), options: options)
            guard let first = response.messages.first else { throw RPCError(code: .internalError, message: "empty Version reply") }
            return first
        }
    }
}
