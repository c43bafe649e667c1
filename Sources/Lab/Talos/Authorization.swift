import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftASN1
import X509

/// Talos' role rules (reference §5.2; talos v1.13.9 `system/services/machined.go` rules): what
/// each method needs, and the caller's roles from the Organization values of its client certificate. A maintenance connection has no certificate and
/// gets `os:reader`, which Talos additionally lets apply a configuration.
enum Access {
    case read, operate, admin, applyConfiguration, etcdBackup
    /// EtcdMemberList, EtcdStatus, EtcdAlarmList: any reader, and `os:etcd:backup` too.
    case etcdRead

    static func roles(_ context: ServerContext) -> [String] {
        guard let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context, let certificate = posix.peerCertificate else {
            return ["os:reader"]
        }
        var roles: [String] = []
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                roles.append(String(describing: attribute.value))
            }
        }
        return roles
    }

    static func check(_ access: Access, roles: [String], maintenance: Bool) throws {
        let allowed: Bool
        if roles.contains("os:admin") {
            allowed = true
        } else {
            switch access {
            case .read: allowed = roles.contains { ["os:operator", "os:reader"].contains($0) }
            case .operate: allowed = roles.contains("os:operator")
            case .etcdBackup: allowed = roles.contains { ["os:operator", "os:etcd:backup"].contains($0) }
            case .etcdRead: allowed = roles.contains { ["os:operator", "os:reader", "os:etcd:backup"].contains($0) }
            case .applyConfiguration: allowed = maintenance && roles.contains("os:reader")
            case .admin: allowed = false
            }
        }
        guard allowed else { throw RPCError(code: .permissionDenied, message: "not authorized") }
    }
}
