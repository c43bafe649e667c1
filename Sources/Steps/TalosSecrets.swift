import Foundation
import ProvisionCore
import TalosKit

/// `talos.secrets`: the cluster's secrets bundle exists in the state directory and decrypts.
/// Creates it (or adopts `secrets.importFrom`) when absent; never replaces one.
public struct TalosSecrets: StepKind {
    public let info = StepKindInfo(name: "talos.secrets", summary: "create or import the cluster's Talos secrets bundle",
                                   estimate: .seconds(2), scope: .cluster, defaultTimeout: .seconds(120))

    public init() {}

    func store(_ context: StepContext) -> SecretsStore {
        SecretsStore(inventory: context.inventory, stateDirectory: context.stateDirectory, credentials: context.credentials)
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let store = store(context)
        guard store.exists else { return .pending("no secrets bundle at \(store.path)") }
        do {
            _ = try await store.load()
        } catch {
            // An unreadable bundle must never be replaced automatically: it is the cluster's root of trust.
            throw StepError.permanent("\(error)")
        }
        return .satisfied(["path": store.path])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let store = store(context)
        let bundle: SecretsBundle
        if let source = context.inventory.secrets.importFrom {
            let path = Inventory.resolve(source.value, inventoryFile: context.inventory.file)
            do { bundle = try SecretsBundle.load(path: path) } catch {
                throw StepError.permanent(error.description)
            }
            context.log("adopting the secrets bundle from \(path)", step: step)
        } else {
            bundle = try SecretsBundle.generate()
        }
        try store.saveIfAbsent(bundle)
        _ = try await store.load()
        // Shared state: in the bucket at once, so a host that takes over after a crash uses this bundle.
        try await BucketState.from(context)?.pushBundle()
        // The cluster is created: the Talos minor whose defaults its configs use is frozen now.
        let contract = try VersionContract.frozen(stateDirectory: context.stateDirectory, version: context.inventory.cluster.talosVersion.value)
        context.log("version contract \(contract.minor): configs keep its defaults whatever talosVersion becomes", step: step)
        return ["path": store.path, "versionContract": contract.minor]
    }
}
