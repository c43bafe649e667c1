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
        case .libvirt:
            // A lab's test-driver hypervisor lives in the state directory, so it outlives this process.
            let uri = spec.setting("uri") ?? ""
            var persisted: TestDriverState?
            if let lab = context.inventory.lab, uri.hasPrefix("test:///") {
                var state = TestDriverState(path: "\(context.inventory.labDirectory(stateDirectory: context.stateDirectory))/libvirt-\(name).xml")
                state.createDelay = lab.scaled(lab.delays.libvirtCreate)
                state.startDelay = lab.scaled(lab.delays.libvirtStart)
                persisted = state
            }
            let inventory = context.inventory, factory = spec.setting("imageFactory")
            provider = try LibvirtMachineProvider(provider: spec, persisted: persisted,
                                                  made: MadeDomains(stateDirectory: context.stateDirectory, provider: name)) { node in
                try BootMediaResolver.libvirt(for: node, in: inventory, factory: factory)
            }
        case .metal:
            // In maintenance a woken mini is where DHCP put it: found by its MAC, as await-maintenance finds it.
            provider = MetalMachineProvider(provider: spec) { node in await NodeLocator.inMaintenance(node.name.value, context) != nil }
        case .proxmox:
            let inventory = context.inventory
            provider = try ProxmoxMachineProvider(provider: spec, credentials: try await Self.proxmoxCredentials(spec, context)) { node, storage in
                try BootMediaResolver.proxmox(for: node, in: inventory, storage: storage)
            }
        case .aws:
            throw StepError.permanent("\(node.name.value): AWS machines are GPU pool instances, launched by `provision gpu up`")
        }
        return made.withLock { cache in
            if let existing = cache[name] { return existing }
            cache[name] = provider
            return provider
        }
    }

    /// An API token when the inventory names one, else a user and password for a ticket.
    static func proxmoxCredentials(_ spec: ProviderSpec, _ context: StepContext) async throws -> ProxmoxCredentials {
        if let reference = spec.credentials["tokenSecret"]?.value {
            return .token(id: spec.setting("tokenID") ?? "root@pam!provision", secret: try await context.credentials.resolve(reference))
        }
        guard let reference = spec.credentials["password"]?.value else {
            throw StepError.permanent("provider \(spec.name.value): set tokenSecret (an API token) or password")
        }
        return .password(user: spec.setting("username") ?? "root@pam", password: try await context.credentials.resolve(reference))
    }
}
