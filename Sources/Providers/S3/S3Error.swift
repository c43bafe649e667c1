import ProvisionCore

/// An S3 error as the store decoded it (`<Error><Code>…<Message>…`), with the bucket or key it was
/// about and what to do. The secret key never appears: requests are logged by key, never by header.
public enum S3Error: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
    case api(status: Int, code: String, message: String, resource: String)
    case transport(endpoint: String, reason: String)
    case malformed(String)

    static let transientCodes: Set<String> = ["SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed"]

    public var isTransient: Bool {
        switch self {
        case let .api(status, code, _, _): return (status >= 500 && code != "NotImplemented") || Self.transientCodes.contains(code)
        case .transport: return true
        case .malformed: return false
        }
    }

    public var code: String? { if case let .api(_, code, _, _) = self { return code } else { return nil } }
    public var status: Int? { if case let .api(status, _, _, _) = self { return status } else { return nil } }

    /// A conditional write lost: the object exists (`If-None-Match: *`) or changed (`If-Match`).
    /// 409 ConditionalRequestConflict is how some stores answer a concurrent race: also lost.
    public var isPreconditionFailed: Bool { status == 412 || code == "PreconditionFailed" || code == "ConditionalRequestConflict" }

    public var description: String {
        switch self {
        case let .api(status, code, message, resource):
            var text = "S3 \(code) (HTTP \(status)) for \(resource)" + (message.isEmpty ? "" : ": \(message)")
            switch code {
            case "NoSuchBucket": text += "; create the bucket, or fix backup.bucket (and backup.endpoint) in the inventory"
            case "SignatureDoesNotMatch": text += "; the secret access key is wrong: check what backup.secretAccessKey's reference resolves to"
            case "InvalidAccessKeyId": text += "; the access key ID is unknown to this store: check backup.accessKeyID's reference"
            case "AccessDenied": text += "; the key has no right to do this: give it read, write, list and delete on the bucket"
            case "NotImplemented": text += "; this store does not support the request (conditional writes on Backblaze B2, for one)"
            default: break
            }
            return text
        case let .transport(endpoint, reason): return "S3 endpoint \(endpoint) unreachable: \(reason); check backup.endpoint and the network"
        case let .malformed(reason): return "S3 reply not understood: \(reason)"
        }
    }
}
