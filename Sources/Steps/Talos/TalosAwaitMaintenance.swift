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
        guard let spec = context.inventory.node(named: node) else { throw StepError.permanent("node \(node) is not in the inventory") }
        var locator = NodeLocator(spec, access: TalosAccess.from(context), context: context)
        locator.disks = true
        switch try await locator.locate() {
        case let .configured(result):
            result.connection?.close()
            return .satisfied(["mode": "configured"])
        case let .maintenance(result, address):
            result.connection?.close()
            // A disk list that could not be read is not an empty one: judge the install disk only on a real answer.
            guard let disks = result.disks else { return .pending("\(node) answers, but its disks could not be read yet: \(result.disksError ?? "no reply")") }
            guard let volumes = result.volumes else { return .pending("\(node) answers, but what is on its disks could not be read yet: \(result.volumesError ?? "no reply")") }
            var outputs = try preflight(node, disks, volumes, context)
            outputs["address"] = address
            return .satisfied(outputs)
        case let .missing(reason):
            return .pending("\(node) is not answering in maintenance yet: \(reason)")
        }
    }

    public func apply(_ step: StepInstance, context: StepContext) async throws -> StepOutputs {
        let node = try step.requireNode()
        let access = TalosAccess.from(context)
        let address = try access.address(of: node)
        context.log("waiting for \(node) at \(address):50000 (or wherever DHCP put it, found by its MAC)", step: step)
        return try await waitFor("\(node)'s Talos API", interval: access.pollInterval, step: step, context: context) {
            switch try await observe(step, context: context) {
            case let .satisfied(outputs): return outputs
            case let .pending(reason):
                // A look cut short by the timeout itself says nothing about the node.
                if !Task.isCancelled { context.waiting(reason, step: step) }
                return nil
            }
        }
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
