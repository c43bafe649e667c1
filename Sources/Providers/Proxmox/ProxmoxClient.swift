import Foundation
import NIOHTTP1
import ProvisionCore

/// A Proxmox VE API error, classified the way PVE's own texts allow: lock and worker timeouts and
/// 5xx without a known cause are retried; "already exists", "does not exist" and configuration
/// errors (parameter and storage messages, which PVE often sends as HTTP 500) are answered by the
/// caller or reported at once: retrying them only delays the message that says what to fix.
public struct ProxmoxError: ClassifiedError, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    public let parameters: [String: String]
    public let operation: String

    public var alreadyExists: Bool { message.contains("already exists") }
    public var notFound: Bool { message.contains("does not exist") }
    public var notRunning: Bool { message.contains("not running") }
    /// What no retry changes: a parameter PVE refused, a storage without the content type, no room.
    public var isConfiguration: Bool {
        if !parameters.isEmpty { return true }
        let markers = ["not configured for content-type", "does not hold", "enable that content type", "parameter verification failed",
                       "unable to parse", "invalid format", "not enough space", "no space left"]
        return markers.contains { message.lowercased().contains($0) }
    }
    public var isTransient: Bool {
        if message.contains("got timeout") || message.contains("got no worker upid") || message.contains("is locked") { return true }
        if status == 0 { return true }  // transport
        return status >= 500 && !alreadyExists && !notFound && !notRunning && !isConfiguration && !message.contains("Permission")
    }

    public var description: String {
        var text = "Proxmox \(operation): \(message.trimmingCharacters(in: .whitespacesAndNewlines))"
        if status > 0 { text += " (HTTP \(status))" }
        if !parameters.isEmpty { text += ": " + parameters.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ") }
        if status == 401 { text += "; check the credentials the inventory references (tokenID + tokenSecret, or username + password)" }
        return text
    }
}

/// PVE's JSON API over a fingerprint-pinned connection, signed in with an API token
/// (`Authorization: PVEAPIToken=USER@REALM!ID=SECRET`) or a ticket. Secrets are only ever in that
/// header, the ticket cookie, or the sign-in body.
public struct ProxmoxClient: Sendable {
    let transport: PinnedHTTPS
    let tokenHeader: String?
    let session: ProxmoxTicketSession?
    public let node: String
    public var pollInterval: Duration = .milliseconds(500)

    public init(host: String, port: Int = 8006, fingerprint: String, credentials: ProxmoxCredentials, node: String) {
        transport = PinnedHTTPS(host: host, port: port, fingerprint: fingerprint)
        switch credentials {
        case let .token(id, secret):
            tokenHeader = "PVEAPIToken=\(id)=\(secret)"
            session = nil
        case let .password(user, password):
            tokenHeader = nil
            session = ProxmoxTicketSession(user: user, password: password)
        }
        self.node = node
    }

    public init(host: String, port: Int = 8006, fingerprint: String, tokenID: String, secret: String, node: String) {
        self.init(host: host, port: port, fingerprint: fingerprint, credentials: .token(id: tokenID, secret: secret), node: node)
    }

    static func form(_ parameters: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        return parameters.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
    }

    static func transportError(_ failure: PinnedHTTPS.Failure, operation: String) -> Error {
        if failure.pinMismatch { return StepError.refused(failure.description) }
        return ProxmoxError(status: 0, message: failure.description, parameters: [:], operation: operation)
    }

    func authHeaders(_ method: HTTPMethod) async throws -> [(String, String)] {
        if let tokenHeader { return [("Authorization", tokenHeader)] }
        guard let session else { return [] }
        return try await session.headers(for: method) { user, password in try await login(user: user, password: password) }
    }

    /// One API call; returns the `data` member. A ticket refused with 401 is renewed once.
    public func call(_ method: HTTPMethod, _ path: String, _ parameters: [(String, String)] = []) async throws -> Any? {
        do {
            return try await attempt(method, path, parameters)
        } catch let error as ProxmoxError where error.status == 401 && session != nil {
            await session?.forget()
            return try await attempt(method, path, parameters)
        }
    }

    func attempt(_ method: HTTPMethod, _ path: String, _ parameters: [(String, String)]) async throws -> Any? {
        let operation = "\(method) \(path)"
        var uri = "/api2/json" + path
        var body: Data?
        var headers = try await authHeaders(method) + [("Accept", "application/json")]
        if method == .GET || method == .DELETE {
            if !parameters.isEmpty { uri += "?" + Self.form(parameters) }
        } else {
            body = Data(Self.form(parameters).utf8)
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        }
        let response: PinnedHTTPS.Response
        do { response = try await transport.send(method: method, path: uri, headers: headers, body: body) } catch let failure as PinnedHTTPS.Failure {
            throw Self.transportError(failure, operation: operation)
        }
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        guard response.status == 200 else {
            let message = (object?["message"] as? String) ?? response.reason
            let errors = (object?["errors"] as? [String: Any] ?? [:]).mapValues { "\($0)".trimmingCharacters(in: .whitespacesAndNewlines) }
            throw ProxmoxError(status: response.status, message: message.isEmpty ? "HTTP \(response.status)" : message, parameters: errors, operation: operation)
        }
        return object?["data"] as Any?
    }

    /// Waits for a task. `OK` and `WARNINGS: n` are success; anything else is the task's error text.
    /// A 400 right after dispatch is eventual consistency and is retried.
    public func wait(_ upid: String, operation: String) async throws {
        let encoded = upid.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? upid
        let taskNode = upid.split(separator: ":", omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? node
        var early = 0
        while true {
            let status: [String: Any]
            do {
                status = (try await call(.GET, "/nodes/\(taskNode)/tasks/\(encoded)/status") as? [String: Any]) ?? [:]
            } catch let error as ProxmoxError where error.status == 400 && early < 10 {
                early += 1
                try await Task.sleep(for: pollInterval)
                continue
            }
            if status["status"] as? String == "stopped" {
                let exit = status["exitstatus"] as? String ?? ""
                if exit == "OK" || exit.hasPrefix("WARNINGS") { return }
                throw ProxmoxError(status: 500, message: exit, parameters: [:], operation: "\(operation) (task \(upid))")
            }
            try await Task.sleep(for: pollInterval)
        }
    }

    /// Runs an asynchronous call and waits for its task.
    public func task(_ method: HTTPMethod, _ path: String, _ parameters: [(String, String)] = []) async throws {
        guard let upid = try await call(method, path, parameters) as? String, upid.hasPrefix("UPID:") else {
            throw ProxmoxError(status: 500, message: "got no worker upid", parameters: [:], operation: "\(method) \(path)")
        }
        try await wait(upid, operation: "\(method) \(path)")
    }
}
