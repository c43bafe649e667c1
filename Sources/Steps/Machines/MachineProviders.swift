import Foundation
import Providers
import ProvisionCore
import Synchronization

/// The run's machine providers by inventory name, made once (one libvirt connection, one resolved
/// Proxmox token) and shared by every machine step.
public final class MachineProviders: Sendable {
    private let made = Mutex<[String: any MachineProvider]>([:])

    public init() {}

    public static func from(_ context: StepContext) -> MachineProviders {
        context.services[MachineProviders.self] ?? MachineProviders()
    }

    public func provider(for node: NodeSpec, context: StepContext) async throws -> any MachineProvider {
        let name = node.machine.provider.value
        if let existing = made.withLock({ $0[name] }) { return existing }
        guard let spec = context.inventory.provider(named: name) else {
            throw StepError.permanent("\(node.name.value): provider \(name) is not in the inventory")
        }
        let provider: any MachineProvider
        switch spec.kind.value {
        case .libvirt: provider = try LibvirtMachineProvider(provider: spec)
        case .metal: provider = MetalMachineProvider(provider: spec)
        case .proxmox:
            guard let reference = spec.credentials["tokenSecret"]?.value else {
                throw StepError.permanent("provider \(name): this build signs in to Proxmox with an API token (tokenSecret)")
            }
            provider = try ProxmoxMachineProvider(provider: spec, secret: try await context.credentials.resolve(reference))
        case .aws:
            throw StepError.permanent("\(node.name.value): AWS machines are GPU pool instances, launched by `provision gpu up`")
        }
        return made.withLock { cache in
            if let existing = cache[name] { return existing }
            cache[name] = provider
            return provider
        }
    }
}
