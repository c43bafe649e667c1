import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import SwiftProtobuf

/// Calls on one Talos node's API (port 50000), in maintenance or configured (mTLS) mode, over a
/// shared `TalosConnection`. Every call carries a deadline and does not wait for a connection that
/// is down (the caller's retry policy decides); the receive limit is raised to Talos' 32 MiB.
public struct TalosClient: Sendable {
    public let connection: TalosConnection
    public var timeout: Duration = .seconds(10)
    public var host: String { connection.host }
    public var port: Int { connection.port }

    public init(connection: TalosConnection) {
        self.connection = connection
    }

    /// A client with its own connection, closed when the last copy of the client goes.
    public init(host: String, port: Int = 50000, mode: TalosTLS.Mode) throws {
        self.connection = try TalosConnection(host: host, port: port, mode: mode)
    }

    /// Runs `body` on the shared connection; gRPC failures come out as `TalosError`.
    func withClient<Result: Sendable>(_ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
        do {
            return try await body(connection.grpc)
        } catch let error as TalosError {
            throw error
        } catch {
            throw TalosError.from(error, host: "\(host):\(port)")
        }
    }

    func machine<Result: Sendable>(_ body: (Machine_MachineService.Client<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
        try await withClient { try await body(Machine_MachineService.Client(wrapping: $0)) }
    }

    var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.maxResponseMessageBytes = 32 << 20
        options.waitForReady = false
        return options
    }

    static func first<Message>(_ messages: [Message], _ method: String) throws -> Message {
        guard let first = messages.first else { throw TalosError.other(code: "empty", message: "\(method) returned no message") }
        return first
    }

    /// The node's Talos version, platform and whether it runs with a machine config (RBAC on).
    public func version() async throws -> Machine_Version {
        try await machine { try Self.first(try await $0.version(Google_Protobuf_Empty(), options: options).messages, "Version") }
    }

    public func hostname() async throws -> String {
        try await machine { try Self.first(try await $0.hostname(Google_Protobuf_Empty(), options: options).messages, "Hostname").hostname }
    }

    /// Sends a whole machine config. The mode is always explicit: the proto default would be REBOOT.
    public func applyConfiguration(_ config: String, mode: Machine_ApplyConfigurationRequest.Mode = .auto,
                                   dryRun: Bool = false) async throws -> Machine_ApplyConfiguration {
        var request = Machine_ApplyConfigurationRequest()
        request.data = Data(config.utf8)
        request.mode = mode
        request.dryRun = dryRun
        return try await machine { try Self.first(try await $0.applyConfiguration(request, options: options).messages, "ApplyConfiguration") }
    }

    public enum BootstrapOutcome: Sendable, Equatable {
        case bootstrapped
        /// etcd's data directory is not empty: bootstrapped before, or already joined.
        case alreadyBootstrapped
    }

    /// `recoverEtcd`: restore the snapshot EtcdRecover uploaded instead of starting empty.
    public func bootstrap(recoverEtcd: Bool = false) async throws -> BootstrapOutcome {
        var request = Machine_BootstrapRequest()
        request.recoverEtcd = recoverEtcd
        do {
            _ = try await machine { try await $0.bootstrap(request, options: options) }
            return .bootstrapped
        } catch TalosError.alreadyExists {
            return .alreadyBootstrapped
        }
    }

    /// Disaster recovery's reset: EPHEMERAL (etcd's data) wiped without leaving etcd (there is no
    /// quorum to leave), the config kept, then a reboot; etcd comes back Preparing.
    public func resetEphemeral() async throws -> String {
        var request = Machine_ResetRequest()
        request.graceful = false
        request.reboot = true
        request.mode = .systemDisk
        request.systemPartitionsToWipe = [.with { $0.label = "EPHEMERAL"; $0.wipe = true }]
        return try await machine { try Self.first(try await $0.reset(request, options: options).messages, "Reset").actorID }
    }

    /// Wipes STATE and EPHEMERAL only and reboots (without reboot the node halts). Graceful: the
    /// node drains itself and a control plane leaves etcd, which fails the whole reset when etcd
    /// refuses; not graceful: neither (the docs' advice when etcd cannot be left). Returns the
    /// actor ID whose events tell how it ended.
    public func resetSystemPartitions(graceful: Bool = true) async throws -> String {
        var request = Machine_ResetRequest()
        request.graceful = graceful
        request.reboot = true
        request.mode = .systemDisk
        request.systemPartitionsToWipe = ["STATE", "EPHEMERAL"].map { label in
            var spec = Machine_ResetPartitionSpec()
            spec.label = label
            spec.wipe = true
            return spec
        }
        return try await machine { try Self.first(try await $0.reset(request, options: options).messages, "Reset").actorID }
    }

    public func etcdMembers() async throws -> [Machine_EtcdMember] {
        try await machine { try Self.first(try await $0.etcdMemberList(Machine_EtcdMemberListRequest(), options: options).messages, "EtcdMemberList").members }
    }

    /// The node's disks, as the install-disk preflight needs them (works in maintenance mode).
    public func disks() async throws -> [Storage_Disk] {
        try await withClient { grpc in
            try Self.first(try await Storage_StorageService.Client(wrapping: grpc).disks(Google_Protobuf_Empty(), options: options).messages, "Disks").disks
        }
    }
}
