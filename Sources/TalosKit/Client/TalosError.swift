import GRPCCore
import ProvisionCore

/// What went wrong talking to a Talos node, in terms a step can act on. Transient cases (the node
/// restarting apid, a call timing out, bootstrap "not available yet") are retried by the executor;
/// the rest are reported.
public enum TalosError: ClassifiedError, Sendable, CustomStringConvertible {
    case unreachable(host: String, reason: String)
    case permissionDenied(String)
    /// In maintenance mode, or the call is for a control plane and this is a worker.
    case unimplemented(String)
    case alreadyExists(String)
    case notReady(String)
    case rejected(String)
    case notFound(String)
    case timedOut(String)
    case other(code: String, message: String)

    public var isTransient: Bool {
        switch self {
        case .unreachable, .notReady, .timedOut: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .unreachable(host, reason): return "Talos API at \(host) is unreachable: \(reason)"
        case let .permissionDenied(message): return "not authorized: \(message) (check the talosconfig role; maintenance mode only allows reads and apply)"
        case let .unimplemented(message): return "not available on this node: \(message)"
        case let .alreadyExists(message): return "already exists: \(message)"
        case let .notReady(message): return "node not ready: \(message)"
        case let .rejected(message): return "rejected by the node: \(message)"
        case let .notFound(message): return "not found: \(message)"
        case let .timedOut(message): return "timed out: \(message)"
        case let .other(code, message): return "\(code): \(message)"
        }
    }

    /// Maps a gRPC error from a call to `host`.
    static func from(_ error: any Error, host: String) -> TalosError {
        guard let rpc = error as? RPCError else { return .unreachable(host: host, reason: "\(error)") }
        switch rpc.code {
        case .unavailable, .cancelled:
            // Keep the transport's cause (TLS alert, refused connect): probes classify by it.
            return .unreachable(host: host, reason: rpc.message + (rpc.cause.map { " (\($0))" } ?? ""))
        case .permissionDenied, .unauthenticated: return .permissionDenied(rpc.message)
        case .unimplemented: return .unimplemented(rpc.message)
        case .alreadyExists: return .alreadyExists(rpc.message)
        case .failedPrecondition: return .notReady(rpc.message)
        case .invalidArgument: return .rejected(rpc.message)
        case .notFound: return .notFound(rpc.message)
        case .deadlineExceeded: return .timedOut(rpc.message)
        default: return .other(code: "\(rpc.code)", message: rpc.message)
        }
    }
}
