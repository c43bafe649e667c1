import Foundation
import ProvisionCore

/// Finds out, explicitly, which state a node's Talos API is in, from one TLS handshake (the
/// certificate the node presents and whether it asks for ours). There is no second, weaker
/// attempt: a node that is neither Talos in maintenance nor ours is told nothing at all.
public struct TalosProbe: Sendable {
    public enum Mode: String, Sendable {
        case maintenance
        case configured
        /// Not this cluster's: its certificate is neither Talos' maintenance identity nor from our
        /// OS CA, or it shows the maintenance identity yet asks for a client certificate.
        case wrongCluster = "wrong-cluster"
        /// Not in maintenance, and without our CA there is no telling whose it is.
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
        /// The disks, when asked for and read; nil when not asked or the read failed (never "none").
        public var disks: [Storage_Disk]?
        /// Why the disks could not be read, when they could not.
        public var disksError: String?
        /// The node's links with their MACs, read with the disks; nil when unread.
        public var links: [NetworkLink]?
        public var linksError: String?
        /// What is on the disks (partition tables, filesystems), read with them; nil when unread.
        public var volumes: [DiscoveredVolume]?
        /// Why the volumes could not be read, when they could not.
        public var volumesError: String?
        public var etcdMembers: [Machine_EtcdMember]?
        /// Who the node's certificate showed it to be.
        public var identity: TalosPeerIdentity?
        /// The connection the node was identified on, for calls that must go to exactly that
        /// machine in that boot (a reconnect to any other identity is refused). Nil when unreachable.
        public var connection: TalosConnection?

        public var reachable: Bool { ![.unreachable, .tlsError, .notAllowed].contains(mode) }

        /// The disks and what is on them, read over the connection the machine was identified on
        /// (after its links proved which machine it is).
        public mutating func readDisks(timeout: Duration = .seconds(5)) async {
            guard let connection else { return }
            var client = TalosClient(connection: connection)
            client.timeout = timeout
            await readDisks(client)
        }

        mutating func readDisks(_ client: TalosClient) async {
            do { disks = try await client.disks() } catch { disksError = "\(error)" }
            do { volumes = try await client.discoveredVolumes() } catch { volumesError = "\(error)" }
        }
    }

    public var host: String
    public var port: Int
    /// The cluster's CA and a client certificate and key, when we have them.
    public var credentials: (ca: String, certificate: String, key: String)?
    public var timeout: Duration = .seconds(5)
    /// What to read beyond the version and identity: only what the caller uses (each is a call).
    public var readDisks = true
    /// The links with their MACs: what proves which machine answers in maintenance.
    public var readLinks = true
    public var readEtcdMembers = true
    /// Only the version and what is asked for beyond it: no hostname or stage.
    public var brief = false

    public init(host: String, port: Int = 50000, credentials: (ca: String, certificate: String, key: String)?) {
        self.host = host
        self.port = port
        self.credentials = credentials
    }

    /// One connection in identify mode: its handshake says who the node is, and a node that is
    /// neither in maintenance nor ours is refused inside that handshake, so nothing is sent to it.
    public func run() async -> Result {
        do { try NetworkPolicy.check(host: host, for: "Talos API") } catch { return Result(mode: .notAllowed, reason: error.description) }
        let connection: TalosConnection
        do { connection = try TalosConnection(host: host, port: port, mode: .identify(credentials: credentials)) } catch {
            return Result(mode: .tlsError, reason: "\(error)")
        }
        var client = TalosClient(connection: connection)
        client.timeout = timeout
        let version: Machine_Version
        do {
            version = try await client.version()
        } catch {
            connection.close()
            return Self.classify(failure: error, facts: connection.handshake.facts, verifiable: credentials != nil)
        }
        let mode: Mode = if case .ours = connection.handshake.identity { .configured } else { .maintenance }
        do {
            var result = try await details(client, mode: mode, version: version)
            result.identity = connection.handshake.identity
            result.connection = connection
            return result
        } catch {
            connection.close()
            return Result(mode: .unreachable, reason: "\(error)")
        }
    }

    /// Why the first call failed, from the handshake's facts: no TCP connection, no certificate,
    /// or an identity the connection refused.
    static func classify(failure error: any Error, facts: TalosHandshake.Facts, verifiable: Bool) -> Result {
        let reason = facts.refusal.map { "it \($0); nothing was sent" }
        switch facts.identity {
        case nil:
            return Result(mode: facts.connected ? .tlsError : .unreachable, reason: "\(error)")
        case .other?:
            if verifiable { return Result(mode: .wrongCluster, reason: reason) }
            return Result(mode: .configuredUnverified, reason: (reason ?? "not in maintenance") + "; pass --talosconfig (or probe INVENTORY/NODE) to check whether it is this cluster's")
        case .maintenance? where facts.clientCertificateRequested:
            return Result(mode: .wrongCluster, reason: reason)
        case .maintenance?, .ours?:
            return Result(mode: .unreachable, reason: "\(error)")
        }
    }

    /// What else is read: hostname and stage always; disks, links and etcd members as asked. A
    /// scan asks for links only (`brief`), one call per machine it finds in maintenance.
    func details(_ client: TalosClient, mode: Mode, version: Machine_Version) async throws -> Result {
        var result = Result(mode: mode, version: version.version.tag, platform: version.platform.name)
        if !brief {
            result.hostname = try? await client.hostname()
            result.stage = try? await client.machineStatus().stage.rawValue
        }
        if readDisks { await result.readDisks(client) }
        if readLinks {
            do { result.links = try await client.links() } catch { result.linksError = "\(error)" }
        }
        if mode == .configured, readEtcdMembers {
            do { result.etcdMembers = try await client.etcdMembers() } catch TalosError.unimplemented { result.etcdMembers = nil } catch {}
        }
        return result
    }
}
