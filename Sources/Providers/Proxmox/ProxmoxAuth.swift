import Foundation
import NIOHTTP1

/// How we sign in to PVE: an API token (preferred: no session, no CSRF), or a user and password that
/// buy a ticket, for installations where tokens are not set up.
public enum ProxmoxCredentials: Sendable {
    case token(id: String, secret: String)
    case password(user: String, password: String)
}

/// The ticket session for password sign-in. PVE tickets live 2 h; like proxmoxer we sign in again
/// after an hour, and once more when a call answers 401 (a restarted or re-keyed server).
actor ProxmoxTicketSession {
    struct Ticket {
        var cookie: String
        var csrf: String
        var issued: ContinuousClock.Instant
    }

    let user: String
    let password: String
    private var current: Ticket?
    static let lifetime: Duration = .seconds(3600)

    init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// The headers a call carries: the ticket cookie, plus the CSRF token on anything but a read.
    func headers(for method: HTTPMethod, login: @Sendable (String, String) async throws -> Ticket) async throws -> [(String, String)] {
        if current == nil || ContinuousClock.now - current!.issued > Self.lifetime {
            current = try await login(user, password)
        }
        let ticket = current!
        var headers = [("Cookie", "PVEAuthCookie=\(ticket.cookie)")]
        if method != .GET && method != .HEAD { headers.append(("CSRFPreventionToken", ticket.csrf)) }
        return headers
    }

    func forget() { current = nil }
}

extension ProxmoxClient {
    /// `POST /access/ticket`. The password travels only in this request's body.
    func login(user: String, password: String) async throws -> ProxmoxTicketSession.Ticket {
        let body = Data(Self.form([("username", user), ("password", password)]).utf8)
        let response: PinnedHTTPS.Response
        do {
            response = try await transport.send(method: .POST, path: "/api2/json/access/ticket",
                                                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")], body: body)
        } catch let failure as PinnedHTTPS.Failure {
            throw Self.transportError(failure, operation: "sign in")
        }
        let data = ((try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any])?["data"] as? [String: Any]
        guard response.status == 200, let cookie = data?["ticket"] as? String, let csrf = data?["CSRFPreventionToken"] as? String else {
            throw ProxmoxError(status: response.status == 200 ? 401 : response.status, message: "sign-in as \(user) failed",
                               parameters: [:], operation: "POST /access/ticket")
        }
        if data?["NeedTFA"] != nil {
            throw ProxmoxError(status: 401, message: "\(user) needs a second factor; use an API token (tokenSecret) instead",
                               parameters: [:], operation: "POST /access/ticket")
        }
        return .init(cookie: cookie, csrf: csrf, issued: .now)
    }
}
