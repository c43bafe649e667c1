import Foundation
import Providers

/// Powers the lab's VMs as its test-driver hypervisor says, so the machine layer is honest: a VM's
/// Talos node runs only while its libvirt domain runs (after `machines up` or `up` started it), is
/// off when the domain is shut off, and loses its disk when the domain is deleted. Edge-triggered:
/// only a change in the hypervisor's file acts, so a node that shut itself down stays down.
final class HypervisorFollower: Sendable {
    private let task: Task<Void, Never>

    /// `restored`: nodes the saved lab brought back as they were; on the first look their saved
    /// power stands (a machine left off stays off) unless the hypervisor says the domain is off or gone.
    init(cluster: SimulatedTalosCluster, labDirectory: String, restored: Set<String> = []) {
        var watched: [(state: TestDriverState, nodes: [(domain: String, node: SimulatedTalosNode)])] = []
        for (provider, nodes) in Dictionary(grouping: cluster.nodes.filter { $0.spec.hypervisor != nil }, by: { $0.spec.hypervisor! }) {
            watched.append((TestDriverState(path: "\(labDirectory)/libvirt-\(provider).xml"), nodes.map { (domain: $0.spec.domain ?? $0.spec.name, node: $0) }))
        }
        let targets = watched
        task = Task {
            var seen: [String: Bool?] = [:]
            while !Task.isCancelled {
                for (state, nodes) in targets {
                    let power = state.domainPower() ?? [:]
                    for (domain, node) in nodes {
                        let now = power[domain]
                        let key = state.path + "/" + domain
                        if let previous = seen[key], previous == now { continue }
                        let first = seen[key] == nil
                        seen[key] = .some(now)
                        switch now {
                        case true? where first && restored.contains(node.spec.name): continue
                        case true?:
                            guard !(await node.powered) else { break }
                            if let stuck = await Self.firmware(node, devices: state.bootDevices()[domain] ?? [], media: state) {
                                cluster.record.note(node.spec.name, "firmware", detail: stuck)
                                break
                            }
                            await node.powerOn()
                        case false?: if await node.powered { await node.powerOff() }
                        case nil:
                            if await node.powered { await node.powerOff() }
                            // A domain that existed and is gone took its disk with it.
                            if !first { await node.diskDestroyed() }
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    func stop() { task.cancel() }

    /// What OVMF does with a domain's boot devices, in boot order: the first that holds Talos boots
    /// (a disk Talos installed itself to or runs from, a disk made from the Talos disk image for this
    /// node's schematic, the Talos ISO for it); a blank disk and no such medium leave the VM in its firmware.
    /// Returns why it does not boot, or nil when it does.
    static func firmware(_ node: SimulatedTalosNode, devices: [(device: String, source: String)], media: TestDriverState) async -> String? {
        var seen: [String] = []
        for (device, source) in devices {
            // Talos on the disk already: installed there (metal), or a disk that booted Talos and
            // holds its config (whatever image it was first made from, an upgrade rewrote it since).
            let configured = await node.configured, installed = await node.installed
            if device == "disk", configured || (node.spec.installsToDisk && installed) { return nil }
            guard let image = media.media(at: source).flatMap(LabTalosImage.init) else {
                seen.append("\(device) \(source): nothing bootable")
                continue
            }
            guard image.schematic == node.spec.schematic else {
                seen.append("\(device) \(source): Talos for schematic \(image.schematic.prefix(12)), not this node's \(node.spec.schematic?.prefix(12) ?? "none")")
                continue
            }
            return nil
        }
        return "BdsDxe: No bootable option or device was found (" + (seen.isEmpty ? "no boot device" : seen.joined(separator: "; ")) + ")"
    }
}
