import Foundation
import KubeKit
import ProvisionCore

/// The secrets foundation's inputs, resolved from the inventory's references and checked before
/// anything is applied: a 1Password Connect credentials file must be the JSON `op connect server
/// create` writes, and an age key must be an age identity. Values are never logged: the resolver
/// registers each with the run's redactor.
struct FoundationCredentials: Sendable {
    var connectCredentials: String = ""
    var connectToken: String = ""
    var ageKey: String = ""

    static let connectKeys = ["verifier", "encCredentials", "version", "deviceUuid", "uniqueKey"]

    static func load(_ spec: FoundationSpec, context: StepContext) async throws -> FoundationCredentials {
        func resolve(_ name: String) async throws -> (String, String) {
            guard let reference = spec.credentials[name] else {
                throw StepError.refused("foundation.\(name) is not set in the inventory")
            }
            do { return (try await context.credentials.resolve(reference.value), "\(reference.location): foundation.\(name) (\(reference.value))") } catch {
                throw StepError.refused("\(reference.location): foundation.\(name): \(error); nothing was applied")
            }
        }
        var loaded = FoundationCredentials()
        switch spec.kind.value {
        case .onepassword:
            let (credentials, credentialsPlace) = try await resolve("credentials")
            let (token, tokenPlace) = try await resolve("token")
            let object = try? JSON.parse(credentials.trimmingCharacters(in: .whitespacesAndNewlines))
            let missing = connectKeys.filter { object?[$0] == nil }
            guard object?.object != nil, missing.isEmpty else {
                let what = object?.object == nil ? "is not JSON" : "lacks \(missing.joined(separator: ", "))"
                throw StepError.refused("\(credentialsPlace) \(what): it must be the 1password-credentials.json that `op connect server create` writes; nothing was applied")
            }
            guard !token.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, !token.contains("\n") else {
                throw StepError.refused("\(tokenPlace) must be one line, the Connect access token from `op connect token create`; nothing was applied")
            }
            loaded.connectCredentials = credentials.trimmingCharacters(in: .whitespacesAndNewlines)
            loaded.connectToken = token.trimmingCharacters(in: .whitespacesAndNewlines)
        case .sopsAge:
            let (key, place) = try await resolve("key")
            guard key.split(separator: "\n").contains(where: { $0.hasPrefix("AGE-SECRET-KEY-1") }) else {
                throw StepError.refused("\(place) holds no AGE-SECRET-KEY-1… line: it must be an age identity (`age-keygen` output); nothing was applied")
            }
            loaded.ageKey = key
        case .none:
            break
        }
        return loaded
    }
}
