import Foundation
import Lab
import ProvisionCore
import Steps

/// A read-only look at the live cluster outside a run (status, finding an orphan to remove): a
/// lab inventory's lab is brought up from its saved state for the look (or the served one used) and
/// never saved; Talos and Kubernetes clients are made for it and closed after.
enum LiveLook {
    static func with<T: Sendable>(_ inventory: Inventory, stateDirectory: String, output: Output,
                                  _ body: @Sendable (StepContext) async -> T) async -> T {
        let redactor = Redactor()
        let resolver = CredentialResolver(baseDirectory: inventory.directory, redactor: redactor)
        let lab = try? await InProcessLab.start(inventory, stateDirectory: stateDirectory, credentials: resolver, output: output, readOnly: true)
        var services = Services()
        let talos = TalosAccess(inventory: inventory, stateDirectory: stateDirectory, credentials: resolver)
        let kube = KubeAccess(stateDirectory: stateDirectory)
        services[TalosAccess.self] = talos
        services[KubeAccess.self] = kube
        services[MachineProviders.self] = MachineProviders()
        let context = StepContext(inventory: inventory, stateDirectory: stateDirectory, runID: "look", credentials: resolver,
                                  events: EventBus(redactor: redactor, sinks: []), services: services)
        let value = await body(context)
        talos.close()
        await kube.close()
        await lab?.finish()
        return value
    }
}
