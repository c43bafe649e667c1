import Foundation
import ProvisionCore
import GRPCCore

/// Finds out, explicitly, which state a node's Talos API is in. Used to report and to choose the
/// right step, never as a fallback: an operation that fails over mTLS is not retried insecurely.
public struct TalosProbe: Sendable {
    public enum Mode: String, Sendable {
        case maintenance
        case configured
        /// Configured, but by another cluster: its certificate does not chain to our OS CA.
        case wrongCluster = "wrong-cluster"
        /// Configured (it asks for a client certificate), and we have no credentials to check whose.
        case configuredUnverified = "configured-unverified"
        case unreachable
        case tlsError = "tls-error"
        /// The network policy forbids this address (a lab or test run); nothing was sent.
        case notAllowed = "not-allowed"
    }

    public struct Result: Sendable {
        public var mode: Mode
        public var reason: String?
        public var version: String?
        public var platform: String?
        public var hostname: String?
        /// The machine stage (`MachineStatuses` resource), e.g. installing, running.
        public var stage: String?
        public var disks: [Storage_Disk] = []
        public var etcdMembers: [Machine_EtcdMember]?

        public var reachable: Bool { ![.unreachable, .tlsError, .notAllowed].contains(mode) }
    }

    public var host: String
    public var port: Int
    /// The cluster's CA and a client certificate and key, when we have them.
    public var credentials: (ca: String, certificate: String, key: String)?
    public var timeout: Duration = .seconds(5)

    public init(host: String, port: Int = 50000, credentials: (ca: String, certificate: String, key: String)?) {
        self.host = host
        self.port = port
        self.credentials = credentials
    }

    public func run() async -> Result {
        do { try NetworkPolicy.check(host: host, for: "Talos API") } catch { return Result(mode: .notAllowed, reason: error.description) }
        if let credentials {
            do {
                var client = try TalosClient(host: host, port: port, mode: .configured(caPEM: credentials.ca, certificatePEM: credentials.certificate, keyPEM: credentials.key))
                client.timeout = timeout
                return try await details(client, mode: .configured)
            } catch {
                let reason = Self.reason(error)
                if Self.refused(reason) || Self.timedOut(reason) { return Result(mode: .unreachable, reason: reason) }
                // Not our CA: either a node in maintenance (self-signed) or another cluster's node.
                var fallback = ""
                if var maintenance = try? TalosClient(host: host, port: port, mode: .maintenance(spkiPin: nil)) {
                    maintenance.timeout = timeout
                    do { return try await details(maintenance, mode: .maintenance) } catch { fallback = Self.reason(error) }
                }
                // Another cluster's node is one that also demands a client certificate; a node that is
                // merely slow or restarting must never be mistaken for one (that would refuse it for good).
                if Self.certificateRequired(fallback) && (Self.certificateRequired(reason) || Self.verifyFailed(reason)) {
                    return Result(mode: .wrongCluster, reason: reason)
                }
                if Self.refused(fallback) || Self.timedOut(fallback) { return Result(mode: .unreachable, reason: fallback) }
                return Result(mode: .tlsError, reason: reason)
            }
        }
        do {
            var client = try TalosClient(host: host, port: port, mode: .maintenance(spkiPin: nil))
            client.timeout = timeout
            return try await details(client, mode: .maintenance)
        } catch {
            let reason = Self.reason(error)
            if Self.refused(reason) || Self.timedOut(reason) { return Result(mode: .unreachable, reason: reason) }
            if Self.certificateRequired(reason) { return Result(mode: .configuredUnverified, reason: "the node asks for a client certificate; pass --talosconfig") }
            return Result(mode: .tlsError, reason: reason)
        }
    }

    func details(_ client: TalosClient, mode: Mode) async throws -> Result {
        let version = try await client.version()
        var result = Result(mode: mode, version: version.version.tag, platform: version.platform.name)
        result.hostname = try? await client.hostname()
        result.stage = try? await client.machineStatus().stage.rawValue
        result.disks = (try? await client.disks()) ?? []
        if mode == .configured {
            do { result.etcdMembers = try await client.etcdMembers() } catch TalosError.unimplemented { result.etcdMembers = nil } catch {}
        }
        return result
    }

    /// The whole cause chain as text: TLS and socket failures arrive wrapped in RPC errors.
    static func reason(_ error: any Error) -> String {
        var parts: [String] = []
        var current: (any Error)? = error
        while let error = current, parts.count < 6 {
            parts.append("\(error)")
            current = (error as? RPCError)?.cause
        }
        return parts.joined(separator: ": ")
    }

    static func refused(_ reason: String) -> Bool {
        reason.localizedCaseInsensitiveContains("connection refused") || reason.contains("ECONNREFUSED")
            || reason.contains("Could not establish a connection")
    }
    static func timedOut(_ reason: String) -> Bool { reason.localizedCaseInsensitiveContains("timed out") || reason.contains("deadline") }
    /// A configured node ends the TLS session when it gets no (or a foreign) client certificate; with
    /// TLS 1.3 the client sees that as the connection closing before the HTTP/2 preface.
    static func certificateRequired(_ reason: String) -> Bool {
        reason.contains("CERTIFICATE_REQUIRED") || reason.localizedCaseInsensitiveContains("certificate required")
            || reason.contains("HANDSHAKE_FAILURE") || reason.contains("before completing the HTTP/2 connection preface")
    }
    static func verifyFailed(_ reason: String) -> Bool { reason.contains("CERTIFICATE_VERIFY_FAILED") || reason.localizedCaseInsensitiveContains("verify") }
}
