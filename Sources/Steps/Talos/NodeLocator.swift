import Foundation
import Providers
import ProvisionCore
import TalosKit

/// Where a node's Talos API answers, proven before anything is sent to it.
///
/// A node in maintenance has no address of ours: Talos runs DHCP on every link until a config
/// arrives (talos v1.13.9 `container.go` RunDefaultDHCPOperators; docs `dynamic.mdx`), so it is at
/// its inventory address only when the router reserves that address for its MAC. It is looked for
/// at its inventory address, where this run last found it, where its provider reports it (a
/// hypervisor knows its VM's MAC), and, when the inventory allows it, by a scan of `nodeCIDR`. A
/// machine is taken for the node only when one of its links carries the node's MAC: a reservation
/// that points at another node's address never gets this node's config.
struct NodeLocator {
    enum Whereabouts {
        /// Configured, at its inventory address (where its config put it).
        case configured(TalosProbe.Result)
        /// In maintenance at `address`, its links carrying its MAC; the result's connection is the
        /// one that proved it, for what is sent next.
        case maintenance(TalosProbe.Result, address: String)
        /// Not found yet: where it was looked for, and what would make it instant.
        case missing(String)
    }

    let access: TalosAccess
    let context: StepContext
    let node: NodeSpec
    /// Read the disks (and what is on them) at the machine found.
    var disks = false

    var name: String { node.name.value }
    var home: String { node.address.value.description }

    init(_ node: NodeSpec, access: TalosAccess, context: StepContext) {
        self.node = node
        self.access = access
        self.context = context
    }

    func locate() async throws -> Whereabouts {
        var notes: [String] = []
        var macs = node.machine.mac.map { [$0.value.description.lowercased()] } ?? []
        var tried: Set<String> = []
        func attempt(_ address: String) async throws -> Whereabouts? {
            guard tried.insert(address).inserted else { return nil }
            return try await check(address, macs: macs, notes: &notes)
        }
        if let found = try await attempt(home) { return found }
        if let last = access.located(name), let found = try await attempt(last) { return found }
        // The run's providers only (a run that made none has no hypervisor to ask).
        if let providers = context.services[MachineProviders.self],
           let state = try? await providers.provider(for: node, context: context).observe(node, in: context.inventory) {
            if macs.isEmpty { macs = state.shape?.macs.map { $0.lowercased() } ?? [] }
            if let reported = state.address, reported.description != home, context.inventory.cluster.nodeCIDR.value.contains(reported) {
                if let found = try await attempt(reported.description) { return found }
            }
        }
        if context.inventory.cluster.maintenanceScan?.value == true {
            if macs.isEmpty {
                notes.append("no MAC is known for it (set machine.mac), so a scan cannot tell it from another machine")
            } else {
                let found = try await scan()
                for machine in found where !machine.macs.filter(macs.contains).isEmpty {
                    if let located = try await attempt(machine.address) { return located }
                }
                let others = found.filter { !tried.contains($0.address) }.map { "\($0.address) (\($0.macs.joined(separator: ", ")))" }
                notes.append("a scan of \(context.inventory.cluster.nodeCIDR.value) found " + (found.isEmpty ? "no machine in maintenance"
                    : "no machine in maintenance with \(macs.joined(separator: " or "))" + (others.isEmpty ? "" : "; in maintenance there: \(others.joined(separator: ", "))")))
            }
        }
        return .missing(notes.joined(separator: "; ") + ". " + advice(macs))
    }

    /// Where a node that does not answer at its own address is in maintenance now (a node reset to
    /// maintenance runs DHCP again), proven by its MAC; nil when it is found nowhere.
    static func inMaintenance(_ node: String, _ context: StepContext) async -> String? {
        guard let spec = context.inventory.node(named: node),
              case let .maintenance(found, address)? = try? await NodeLocator(spec, access: TalosAccess.from(context), context: context).locate() else { return nil }
        found.connection?.close()
        return address
    }

    /// What makes finding it instant, said in every wait and at the timeout.
    func advice(_ macs: [String]) -> String {
        let reserve = macs.first.map { "reserve \(home) for MAC \($0) (\(name)) in your router's DHCP settings" }
            ?? "give \(name) a machine.mac and reserve \(home) for it in your router's DHCP settings"
        let scan = context.inventory.cluster.maintenanceScan?.value == true ? "" : ", or set cluster.maintenanceScan: true to look for it across nodeCIDR"
        return "A node in maintenance takes the address DHCP gives it: \(reserve)\(scan)"
    }

    /// One address: the node if it is there, nil (with a note) if not; a refusal when what answers
    /// at the node's own address must not be touched.
    func check(_ address: String, macs: [String], notes: inout [String]) async throws -> Whereabouts? {
        // Links first: the disks are read only from the machine they prove to be this node.
        var result = try await access.probe(name, at: address, links: true)
        let atHome = address == home
        switch result.mode {
        case .configured where atHome:
            return .configured(result)
        case .maintenance:
            guard let links = result.links else {
                result.connection?.close()
                notes.append("\(address) answers in maintenance, but its links could not be read: \(result.linksError ?? "no reply")")
                return nil
            }
            let physical = links.filter(\.isPhysical)
            let theirs = Set(physical.map(\.mac))
            if macs.isEmpty {
                // Nothing to prove it with: only its own address is taken for it, as before.
                if atHome {
                    if disks { await result.readDisks(timeout: .seconds(3)) }
                    return .maintenance(result, address: address)
                }
                result.connection?.close()
                return nil
            }
            if !theirs.isDisjoint(with: macs) {
                do { try Self.checkMAC(name, macs[0], links) } catch {
                    result.connection?.close()
                    throw error
                }
                let known = access.located(name) == address
                access.remember(name, at: atHome ? nil : address)
                if disks { await result.readDisks(timeout: .seconds(3)) }
                if !atHome, !known { context.log("\(name) is in maintenance at \(address) (its DHCP lease; MAC \(macs[0])), not at \(home): its config gives it \(home)") }
                return .maintenance(result, address: address)
            }
            result.connection?.close()
            let other = context.inventory.nodes.first { other in other.machine.mac.map { theirs.contains($0.value.description.lowercased()) } ?? false }
            let seen = physical.map { "\($0.name) \($0.mac)" }.joined(separator: ", ")
            if let other {
                let note = "\(address) answers for \(other.name.value) (\(seen)), not \(name)"
                    + (atHome ? ": the router's reservation for \(other.name.value)'s MAC points at \(name)'s address; fix it there" : "")
                notes.append(note)
                // Said at once, not only when the wait times out: it is the router's to fix.
                if atHome, access.firstTime(note) { context.log(note, level: .warning) }
                return nil
            }
            if atHome { try Self.checkMAC(name, macs[0], links) }
            notes.append("\(address) answers in maintenance for a machine not in the inventory (\(seen))")
            return nil
        case .configured, .wrongCluster, .configuredUnverified:
            result.connection?.close()
            if atHome {
                throw StepError.refused("\(name) at \(address) is not this cluster's node: \(result.reason ?? "its certificate is not from our OS CA"); reset it by hand or fix the address")
            }
            notes.append("\(address) answers, but not in maintenance")
            return nil
        case .notAllowed:
            if atHome { throw StepError.refused(result.reason ?? "\(name): address not allowed") }
            return nil
        case .unreachable, .tlsError:
            notes.append("not answering at \(address)\(atHome ? " (\(result.reason ?? "no reply"))" : "")")
            return nil
        }
    }

    /// The rendered config puts the node's address (and a control plane's VIP) on the link whose
    /// permanent MAC is the inventory's, and any link document turns Talos' DHCP off: with a MAC that
    /// matches no link, the node has no address at all after its config. Refused before it is sent.
    static func checkMAC(_ node: String, _ mac: String, _ links: [NetworkLink]) throws {
        let physical = links.filter(\.isPhysical)
        let matching = physical.filter { $0.mac == mac }
        guard matching.count != 1 else { return }
        let seen = physical.map { "\($0.name) \($0.mac)" }.joined(separator: ", ")
        throw StepError.refused("\(node): the inventory's machine.mac \(mac) is " + (matching.isEmpty ? "on none of its links" : "on \(matching.count) links")
            + " (it has \(seen.isEmpty ? "no physical link" : seen)); its address would go nowhere and it would not answer after its config. "
            + "Fix machine.mac for \(node) in the inventory (or, if this machine is not \(node), the router's reservation that gave it this address)")
    }

    /// The machines in maintenance on the node network, from the latest scan: one at a time, shared
    /// by every node that waits, a new one only once the last is older than the window (a /24 at
    /// most; the gateway and the VIP are never dialled).
    func scan() async throws -> [MaintenanceScan.Found] {
        let cluster = context.inventory.cluster
        var skip: Set<IPv4Address> = [cluster.gateway.value]
        if let vip = cluster.vip?.value { skip.insert(vip) }
        let scan = MaintenanceScan(network: cluster.nodeCIDR.value, port: access.port, skip: skip)
        return await access.scans.latest(maxAge: access.scaled(.seconds(10), floor: .seconds(1)), scan)
    }
}

/// The latest scan and its time: a scan runs alone, and a new one starts only once the last is
/// older than `maxAge`, however many nodes ask (what was found is proven again before use).
actor LatestScan {
    private var last: (at: ContinuousClock.Instant, found: [MaintenanceScan.Found])?
    private var running: Task<[MaintenanceScan.Found], Never>?

    func latest(maxAge: Duration, _ scan: MaintenanceScan) async -> [MaintenanceScan.Found] {
        if let running { return await running.value }
        if let last, ContinuousClock.now - last.at < maxAge { return last.found }
        let task = Task { await scan.run() }
        running = task
        let found = await task.value
        last = (ContinuousClock.now, found)
        running = nil
        return found
    }
}
