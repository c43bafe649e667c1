import Foundation
import ProvisionCore
import TalosKit

/// `talos.await-maintenance`: the node's Talos API answers, in maintenance mode, and the disk the
/// inventory says to install to is there and safe. A node already configured by this cluster
/// satisfies it (a re-run after install); a node of another cluster is refused, never touched.
public struct TalosAwaitMaintenance: StepKind {
    public let info = StepKindInfo(name: "talos.await-maintenance", summary: "wait for the node's Talos API in maintenance mode and check its install disk",
                                   estimate: .seconds(90), scope: .node, mutates: false, defaultTimeout: .seconds(900), parameters: ["timeout"])

    public init() {}

    public func observe(_ step: StepInstance, context: StepContext) async throws -> Observation {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let result = try await access.probe(node, disks: true)
        result.connection?.close()
        switch result.mode {
        case .configured: return .satisfied(["mode": "configured"])
        case .maintenance:
            // A disk list that could not be read is not an empty one: judge the install disk only on a real answer.
            guard let disks = result.disks else { return .pending("\(node) answers, but its disks could not be read yet: \(result.disksError ?? "no reply")") }
            guard let volumes = result.volumes else { return .pending("\(node) answers, but what is on its disks could not be read yet: \(result.volumesError ?? "no reply")") }
            guard let links = result.links else { return .pending("\(node) answers, but its links could not be read yet: \(result.linksError ?? "no reply")") }
            try checkMAC(node, links, context)
            return .satisfied(try preflight(node, disks, volumes, context))
        case .wrongCluster, .configuredUnverified:
            throw StepError.refused("\(node) at \(try access.address(of: node)) is not this cluster's node: \(result.reason ?? "its certificate is not from our OS CA"); reset it by hand or fix the address")
        case .unreachable, .tlsError: return .pending("\(node) is not answering yet: \(result.reason ?? "no reply")")
        case .notAllowed: throw StepError.refused(result.reason ?? "\(node): address not allowed")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let address = try access.address(of: node)
        context.log("waiting for \(node) at \(address):50000", step: step)
        return try await waitFor("\(node)'s Talos API", interval: access.pollInterval, step: step, context: context) {
            switch try await observe(step, context: context) {
            case let .satisfied(outputs): return outputs
            case .pending: return nil
            }
        }
    }

    /// The rendered config puts the node's address (and a control plane's VIP) on the link whose
    /// permanent MAC is the inventory's, and any link document turns Talos' DHCP off: with a MAC that
    /// matches no link, the node has no address at all after its config. Refused before it is sent.
    func checkMAC(_ node: String, _ links: [NetworkLink], _ context: StepContext) throws {
        guard let mac = context.inventory.node(named: node)?.machine.mac?.value.description.lowercased() else { return }
        let physical = links.filter(\.isPhysical)
        let matching = physical.filter { $0.mac == mac }
        guard matching.count != 1 else { return }
        let seen = physical.map { "\($0.name) \($0.mac)" }.joined(separator: ", ")
        throw StepError.refused("\(node): the inventory's machine.mac \(mac) is " + (matching.isEmpty ? "on none of its links" : "on \(matching.count) links")
            + " (it has \(seen.isEmpty ? "no physical link" : seen)); its address would go nowhere and it would not answer after its config. "
            + "Fix machine.mac for \(node) in the inventory")
    }

    func preflight(_ node: String, _ disks: [Storage_Disk], _ volumes: [DiscoveredVolume], _ context: StepContext) throws -> StepOutputs {
        guard let spec = context.inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        let disk = try InstallDiskCheck.check(node: spec, disks: disks)
        // Talos' installer refuses a disk that holds anything but an empty GPT unless told to wipe
        // it; the node would then loop in maintenance. Say so before anything is sent.
        if !spec.wipe, let contents = DiscoveredVolume.contents(of: disk.deviceName, in: volumes) {
            throw StepError.refused("\(node): the install disk \(disk.deviceName) (\(disk.model)) is not empty: it holds \(contents). "
                + "Talos' installer refuses to overwrite it. If nothing on it is worth keeping, set `install.wipe: true` on \(node) in the inventory; "
                + "otherwise point install.disk or install.diskSelector at another disk")
        }
        return ["mode": "maintenance", "installDisk": disk.deviceName]
    }
}
