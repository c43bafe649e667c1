import Foundation
import NIOCore
import NIOSSL
import Synchronization
import X509

/// The identity check of one Talos connection, made inside its TLS handshakes: what the server
/// presented, whether it asked for a client certificate, and the verdict. A server that is not
/// what the connection accepts is refused before the handshake ends, so not one byte of the API
/// (no RPC, no config) reaches it; callers read the facts, never error text, to say why.
public final class TalosHandshake: Sendable {
    /// The identities a connection goes on with.
    public enum Acceptance: Sendable {
        /// Talos' maintenance identity only (with this fingerprint, when pinned), and no request for
        /// a client certificate: Talos in maintenance never makes one.
        case maintenance(spkiPin: String?)
        /// Maintenance as above, or a certificate from our OS CA when we have it: what a probe accepts.
        case maintenanceOrOurs(ca: Certificate?)
    }

    /// What the handshakes so far showed.
    public struct Facts: Sendable, Equatable {
        /// A TCP connection was made (otherwise the node is unreachable, not unidentified).
        public var connected = false
        /// What the server presented last.
        public var identity: TalosPeerIdentity?
        public var clientCertificateRequested = false
        /// Why we ended a handshake, when we did.
        public var refusal: String?
    }

    public let acceptance: Acceptance
    private let state = Mutex<(facts: Facts, locked: TalosPeerIdentity?)>((Facts(), nil))

    public init(_ acceptance: Acceptance) {
        self.acceptance = acceptance
    }

    public var facts: Facts { state.withLock { $0.facts } }

    /// The identity the connection settled on in its first accepted handshake.
    public var identity: TalosPeerIdentity? { state.withLock { $0.locked } }

    func connected() { state.withLock { $0.facts.connected = true } }

    /// The server's certificate arrived. A connection keeps the identity its first handshake
    /// accepted: after a reconnect it must be the same machine in the same boot (a maintenance
    /// key is new on every boot), or the caller must identify the node again.
    func verify(_ chain: [NIOSSLCertificate]) -> NIOSSLVerificationResult {
        let ourCA: Certificate?
        switch acceptance {
        case .maintenance: ourCA = nil
        case let .maintenanceOrOurs(ca): ourCA = ca
        }
        let identity = TalosPeerIdentity.classify(chain, ourCA: ourCA)
        return state.withLock { state in
            state.facts.identity = identity
            var refusal: String?
            switch (acceptance, identity) {
            case let (.maintenance(pin?), .maintenance(spki)) where pin != spki:
                refusal = "presents a maintenance certificate with fingerprint \(spki), not the pinned \(pin)"
            case (_, .maintenance), (.maintenanceOrOurs, .ours): break
            default: refusal = "presents \(identity), neither Talos' maintenance identity nor a certificate from this cluster's OS CA"
            }
            if refusal == nil, let locked = state.locked, locked != identity {
                refusal = "presented \(locked) before and now \(identity): it rebooted or is another machine; identify it again"
            }
            if let refusal {
                state.facts.refusal = refusal
                return .failed
            }
            state.locked = state.locked ?? identity
            return .certificateVerified
        }
    }

    /// The server asked for a client certificate. Only a node of ours may have a signature; for
    /// anything else the request itself shows it is not Talos in maintenance.
    func clientCertificateRequested() -> Bool {
        state.withLock { state in
            state.facts.clientCertificateRequested = true
            if case .ours = state.facts.identity { return true }
            state.facts.refusal = "presents \(state.facts.identity.map(\.description) ?? "no certificate") yet asks for a client certificate, which Talos in maintenance never does"
            return false
        }
    }
}

/// The client key of a probe or maintenance connection: it signs only when the handshake has
/// shown a node of ours asked for it, so the client-certificate request is seen and judged, not
/// silently answered. Without a real key, a throwaway certificate stands in and never signs.
struct HandshakeGatedKey: NIOSSLCustomPrivateKey, Hashable {
    let handshake: TalosHandshake
    let signer: SigningKey?

    struct Refused: Error, CustomStringConvertible {
        var description: String { "client certificate withheld: the node is not one of this cluster's" }
    }

    var signatureAlgorithms: [SignatureAlgorithm] {
        if case .p256 = signer { return [.ecdsaSecp256R1Sha256] }
        return [.ed25519]
    }

    func sign(channel: any Channel, algorithm: SignatureAlgorithm, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        guard handshake.clientCertificateRequested(), let signer else { return channel.eventLoop.makeFailedFuture(Refused()) }
        let bytes = Array(data.readableBytesView)
        return channel.eventLoop.makeCompletedFuture {
            switch signer {
            case let .ed25519(key): return ByteBuffer(bytes: try key.signature(for: bytes))
            case let .p256(key): return ByteBuffer(bytes: try key.signature(for: bytes).derRepresentation)
            case .rsa: throw Refused()
            }
        }
    }

    func decrypt(channel: any Channel, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        channel.eventLoop.makeFailedFuture(Refused())
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.handshake === rhs.handshake }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(handshake)) }
}

/// Marks the TCP connection as made, so a refused connect is told from a refused identity.
final class ConnectionObserver: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let handshake: TalosHandshake

    init(_ handshake: TalosHandshake) { self.handshake = handshake }

    func channelActive(context: ChannelHandlerContext) {
        handshake.connected()
        context.fireChannelActive()
    }
}
