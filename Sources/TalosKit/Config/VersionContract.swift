import Foundation
import ProvisionCore

/// The Talos minor a cluster was created with, frozen then and kept in its state directory
/// (`version-contract.json`), shown by `status`. Raising `talosVersion` later upgrades the nodes
/// and must never change a generated default: Talos users lost their Secrets when a raised
/// contract moved etcd encryption to another document (reference/day2.md 2.5). Between the minors
/// this build renders (1.12, 1.13) no default differs, only what each schema requires (KubeSpan's
/// document), so the renderer needs no contract yet; the first default that differs (1.14's etcd
/// encryption) is to be chosen from `minor` here, never from `talosVersion`.
public struct VersionContract: Sendable, Codable, Equatable {
    /// `v1.13`.
    public var minor: String
    /// The inventory's version when it was frozen, e.g. `v1.13.2`.
    public var frozenFrom: String
    public var frozenAt: Date

    public init(version: String, at date: Date = Date()) {
        minor = Self.minor(of: version)
        frozenFrom = version
        frozenAt = date
    }

    public static func path(_ stateDirectory: String) -> String { stateDirectory + "/version-contract.json" }

    public static func load(stateDirectory: String) -> VersionContract? {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(VersionContract.self, from: data)
    }

    /// The cluster's contract, frozen now from `version` if it has none yet.
    public static func frozen(stateDirectory: String, version: String) throws -> VersionContract {
        if let existing = load(stateDirectory: stateDirectory) { return existing }
        let contract = VersionContract(version: version)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try PrivateFile.write(Array(try encoder.encode(contract)), to: path(stateDirectory))
        return contract
    }

    public static func minor(of version: String) -> String {
        version.split(separator: ".").prefix(2).joined(separator: ".")
    }

}
