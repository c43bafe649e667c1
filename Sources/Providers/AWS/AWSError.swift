import ProvisionCore

/// An EC2 error by its code, classified for the executor: throttling, capacity, eventual
/// consistency and 5xx are retried; credentials, quotas and bad parameters are reported.
public enum AWSError: ClassifiedError, CustomStringConvertible, Sendable {
    case api(status: Int, code: String, message: String)
    case transport(String)
    case malformed(String)

    static let transientCodes: Set<String> = [
        "RequestLimitExceeded", "Throttling", "InsufficientInstanceCapacity", "InternalError", "Unavailable",
        "InvalidInstanceID.NotFound", "ServiceUnavailable",
    ]

    public var isTransient: Bool {
        switch self {
        case let .api(status, code, _): return status >= 500 || Self.transientCodes.contains(code)
        case .transport: return true
        case .malformed: return false
        }
    }

    public var code: String? { if case let .api(_, code, _) = self { return code } else { return nil } }

    public var description: String {
        switch self {
        case let .api(status, code, message):
            var text = "EC2 \(code) (HTTP \(status)): \(message)"
            switch code {
            case "AuthFailure": text += "; check the access key and secret the inventory's credential references resolve to"
            case "VcpuLimitExceeded": text += "; new accounts often have a G-instance vCPU quota of 0: request an increase"
            case "InsufficientInstanceCapacity": text += "; try another subnet/availability zone, or later"
            default: break
            }
            return text
        case let .transport(reason): return "EC2 endpoint unreachable: \(reason)"
        case let .malformed(reason): return "EC2 reply not understood: \(reason)"
        }
    }
}
