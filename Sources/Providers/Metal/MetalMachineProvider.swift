import Foundation
import ProvisionCore
#if canImport(Glibc)
import Glibc
#endif

/// Bare-metal Mac minis: woken by Wake-on-LAN where it works (else the timeout asks for the power
/// button), "running" once the node's Talos API port answers. There is no delete: a reset is the only destructive verb for metal.
public struct MetalMachineProvider: MachineProvider {
    let provider: ProviderSpec
    /// Whether the woken machine answers somewhere else than its inventory address: in maintenance
    /// it has whatever address DHCP gave it (the run's node locator finds it by its MAC).
    let answersElsewhere: (@Sendable (NodeSpec) async -> Bool)?

    public init(provider: ProviderSpec, answersElsewhere: (@Sendable (NodeSpec) async -> Bool)? = nil) {
        self.provider = provider
        self.answersElsewhere = answersElsewhere
    }

    public var bootTimeout: Duration { provider.setting("bootTimeout").flatMap(DurationText.parse) ?? .seconds(600) }

    public func observe(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        let address = node.address.value
        let up = TCPProbe.answers(host: address.description, port: 50000)
        return MachineState(power: up ? .running : .unknown, id: node.machine.mac?.value.description, address: address)
    }

    /// Sends the magic packet and waits for the Talos API port, with the message that says what to
    /// check when it never comes.
    public func ensureRunning(_ node: NodeSpec, in inventory: Inventory) async throws -> MachineState {
        let current = try await observe(node, in: inventory)
        if current.power == .running { return current }
        guard let mac = node.machine.mac?.value, let broadcast = provider.setting("broadcast").flatMap(IPv4Address.init) else {
            throw StepError.permanent("\(node.name.value): Wake-on-LAN needs machine.mac and the provider's broadcast address")
        }
        let port = provider.setting("port").flatMap(Int.init) ?? 9
        let deadline = ContinuousClock.now + bootTimeout
        var nextWake = ContinuousClock.now
        while ContinuousClock.now < deadline {
            if ContinuousClock.now >= nextWake {
                do { try WakeOnLAN.send(to: mac, broadcast: broadcast, port: port) } catch { throw StepError.transient("\(error)") }
                nextWake = ContinuousClock.now + .seconds(30)
            }
            var state = try await observe(node, in: inventory)
            if state.power != .running, await answersElsewhere?(node) == true { state.power = .running }
            if state.power == .running { return state }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw StepError.permanent(WakeOnLAN.timeoutMessage(node: node.name.value, address: node.address.value.description,
                                                           waited: DurationText.format(bootTimeout), link: node.machine.link?.value))
    }

    public func stop(_ node: NodeSpec, in inventory: Inventory) async throws {
        throw StepError.refused("\(node.name.value) is bare metal: provision cannot power it off (shut it down through Talos: `talosctl shutdown`; bringing it back may need its power button)")
    }

    public func delete(_ node: NodeSpec, in inventory: Inventory) async throws {
        throw StepError.refused("\(node.name.value) is bare metal and cannot be deleted; `provision safe-reset` is the only destructive verb for metal")
    }
}
