import Foundation
import Providers
import ProvisionCore

/// `machine.ensure`: the node's machine exists and runs (VM created and started, metal woken and
/// answering). Already running is satisfied, so a converged inventory makes no provider change.
public struct MachineEnsure: StepKind {
    public let info = StepKindInfo(name: "machine.ensure", summary: "make the machine exist and power it on (VM create, Wake-on-LAN)",
                                   estimate: .seconds(60), scope: .node, defaultTimeout: .seconds(900))

    public init() {}

    // No executor resource: the provider holds its `maxParallel` gate around the create alone, so
    // starts and waits never queue behind another node's import.

    func node(_ step: StepInstance, _ context: StepContext) throws -> NodeSpec {
        let name = try step.requireNode()
        guard let node = context.inventory.node(named: name) else { throw StepError.permanent("node \(name) is not in the inventory") }
        return node
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try node(step, context)
        let state = try await MachineProviders.from(context).provider(for: node, context: context).observe(node, in: context.inventory)
        if state.power == .running {
            Self.shapeDrift(node, state, step, context)
            return .satisfied(Self.outputs(state))
        }
        context.plan(PlannedChange(node: node.name.value, resource: "machine", action: state.power == .absent ? "create" : "start",
                                   reason: "\(node.name.value) is \(state.power.rawValue)"), step: step)
        return .pending("\(node.name.value) is \(state.power.rawValue)")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try node(step, context)
        let provider = try await MachineProviders.from(context).provider(for: node, context: context)
        let state = try await provider.ensureRunning(node, in: context.inventory)
        context.log("\(node.name.value) is \(state.power.rawValue)\(state.id.map { " (\($0))" } ?? "")", step: step)
        return Self.outputs(state)
    }

    /// A VM whose size differs from the inventory's: provision does not resize a running VM (the
    /// hypervisor needs it powered off, and the node drained for that), so the plan says so as an
    /// advisory and a run warns; it is never reported as done silently.
    static func shapeDrift(_ node: NodeSpec, _ state: MachineState, _ step: StepInstance, _ context: StepContext) {
        guard let differences = state.shape?.differences(from: node), !differences.isEmpty else { return }
        let reason = "\(differences.joined(separator: ", ")): provision does not resize a VM; power it off and resize it in the hypervisor, or recreate the node (`provision remove`, then `up`)"
        context.plan(PlannedChange(node: node.name.value, resource: "machine", action: "resize", reason: reason, reboot: true), step: step)
        if !context.dryRun { context.log("\(node.name.value): \(reason)", level: .warning, step: step) }
    }

    static func outputs(_ state: MachineState) -> StepOutputs {
        var outputs = ["power": state.power.rawValue]
        if let id = state.id { outputs["id"] = id }
        if let address = state.address { outputs["address"] = address.description }
        return outputs
    }
}

/// `machine.delete`: stops (gracefully first) and removes a VM. Bare metal refuses, unless the
/// step says `metal: keep` (a removal): then the machine stays, in maintenance, and the log says so.
public struct MachineDelete: StepKind {
    public let info = StepKindInfo(name: "machine.delete", summary: "stop and delete a VM (never bare metal)",
                                   estimate: .seconds(30), scope: .node, defaultTimeout: .seconds(600), parameters: ["metal"])

    public init() {}

    /// Nothing to delete: bare metal kept by a removal, or an orphan no provider holds.
    func kept(_ node: NodeSpec, _ step: StepInstance, _ context: StepContext) -> String? {
        if node.machine.provider.value.isEmpty { return "no provider holds a machine for \(node.name.value)" }
        if step.parameters.string("metal") == "keep", context.inventory.provider(named: node.machine.provider.value)?.kind.value == .metal {
            return "\(node.name.value) is bare metal: never deleted; it stays on, in maintenance mode, ready to be given a config again"
        }
        return nil
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try MachineEnsure().node(step, context)
        if let note = kept(node, step, context) { return .satisfied(["machine": note]) }
        let state = try await MachineProviders.from(context).provider(for: node, context: context).observe(node, in: context.inventory)
        return state.power == .absent ? .satisfied([:]) : .pending("\(node.name.value) exists (\(state.power.rawValue))")
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try MachineEnsure().node(step, context)
        if let note = kept(node, step, context) {
            context.log(note, step: step)
            return ["machine": note]
        }
        try await MachineProviders.from(context).provider(for: node, context: context).delete(node, in: context.inventory)
        context.log("\(node.name.value): VM deleted", step: step)
        return [:]
    }
}

/// `machine.preflight`: before any machine is created, every provider prepares its host (a libvirt
/// host without the storage pools gets them defined, shown in the plan first) and checks in one
/// pass what creating the missing machines needs (storages, content types, room for all their
/// disks). Problems fail the run once, with one message per problem naming every node it stops;
/// nothing is retried, since no retry adds a content type to a storage.
public struct MachinePreflight: StepKind {
    public let info = StepKindInfo(name: "machine.preflight", summary: "prepare the hosts (storage pools) and check the providers can create the missing machines (storage, content types, room)",
                                   estimate: .seconds(1), scope: .cluster, defaultTimeout: .seconds(120))

    public init() {}

    /// Each provider with machines to make, with those nodes.
    func providers(_ context: StepContext) -> [(name: String, nodes: [NodeSpec])] {
        let inventory = context.inventory
        let scope = context.target.flatMap(inventory.node(named:)).map { [$0] } ?? inventory.nodes
        return inventory.providers.compactMap { provider in
            let nodes = scope.filter { $0.machine.provider.value == provider.name.value }
            guard !nodes.isEmpty, [.proxmox, .libvirt].contains(provider.kind.value) else { return nil }
            return (provider.name.value, nodes)
        }
    }

    /// Host changes planned, as (provider, what); a provider that cannot be asked goes in `failed`
    /// with its problem.
    func hostChanges(_ context: StepContext, failed: inout [(provider: String, problem: String)]) async -> [(provider: String, change: String)] {
        var changes: [(String, String)] = []
        for (name, nodes) in providers(context) {
            do {
                let machines = try await MachineProviders.from(context).provider(for: nodes[0], context: context)
                changes += try await machines.hostChanges(nodes, in: context.inventory).map { (name, $0) }
            } catch {
                failed.append((name, "provider \(name): \(context.credentials.redactor.redact("\(error)"))"))
            }
        }
        return changes
    }

    /// Every provider's preflight problems (those named in `skipping` already failed), then a
    /// failure listing them all with the ones found before, or the providers checked.
    func check(_ context: StepContext, skipping: Set<String> = [], problems found: [String] = []) async throws -> [String] {
        var problems = found
        var checked: [String] = []
        for (name, nodes) in providers(context) where !skipping.contains(name) {
            do {
                let machines = try await MachineProviders.from(context).provider(for: nodes[0], context: context)
                problems += try await machines.preflight(nodes, in: context.inventory).map { "provider \(name): \($0)" }
                checked.append(name)
            } catch {
                // A provider that cannot be reached or refuses the credentials is a problem too; the others are still checked.
                problems.append("provider \(name): \(context.credentials.redactor.redact("\(error)"))")
            }
        }
        guard problems.isEmpty else {
            throw StepError.permanent("no machine was created; fix these first:\n  " + problems.joined(separator: "\n  "))
        }
        return checked
    }

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        var failed: [(provider: String, problem: String)] = []
        let changes = await hostChanges(context, failed: &failed)
        if !failed.isEmpty {
            // Every problem at once: the other providers' own preflight too.
            _ = try await check(context, skipping: Set(failed.map(\.provider)), problems: failed.map(\.problem))
        }
        guard changes.isEmpty else {
            for (provider, change) in changes {
                context.plan(PlannedChange(node: nil, resource: "host", action: "prepare", reason: "provider \(provider): \(change)"), step: step)
            }
            return .pending(changes.map { "provider \($0.provider): \($0.change)" }.joined(separator: "; "))
        }
        return .satisfied(["checked": try await check(context).joined(separator: ",")])
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        for (name, nodes) in providers(context) {
            let machines = try await MachineProviders.from(context).provider(for: nodes[0], context: context)
            for change in try await machines.hostChanges(nodes, in: context.inventory) { context.log("provider \(name): \(change)", step: step) }
            do { try await machines.prepareHost(nodes, in: context.inventory) } catch let error as StepError {
                throw StepError.permanent("provider \(name): \(error); no machine was created")
            }
        }
        return ["checked": try await check(context).joined(separator: ",")]
    }
}
