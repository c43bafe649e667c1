import Foundation
import Providers

extension LabServices {
    /// A libvirt host restarts (an Unraid reboot, or its array stopped and started): libvirtd stops
    /// every running domain, and on its start libvirt starts the domains marked autostart, and only
    /// those (unraid/webgui `rc.libvirt` stop_running_machines; libvirt's autostart). The lab's VMs
    /// follow their domains, so their Talos nodes go down and boot again with their configs, or stay off.
    func rebootHost(_ provider: String) async -> String {
        guard let labDirectory else { return "this lab keeps no hypervisor: nothing rebooted" }
        let state = TestDriverState(path: "\(labDirectory)/libvirt-\(provider).xml")
        guard FileManager.default.fileExists(atPath: state.path) else { return "the lab has no libvirt host \(provider): nothing rebooted" }
        do {
            let connection = try LibvirtConnection(uri: state.uri)
            try state.restoreAutostart(connection)
            let running = try connection.allDomains().filter { $0.state == .running }.compactMap { TestDriverState.name(of: $0.xml) }
            for name in running { try connection.destroy(name) }
            try state.save(connection)
            let vms = cluster.nodes.filter { $0.spec.hypervisor == provider }
            await settle(vms) { node in await !node.powered }
            let autostarted = state.autostarted()
            let back = try connection.allDomains().compactMap { TestDriverState.name(of: $0.xml) }.filter(autostarted.contains)
            for name in back { try connection.start(name) }
            try state.save(connection)
            await settle(vms.filter { back.contains($0.spec.domain ?? $0.spec.name) }) { node in
                let stage = await node.stage
                return stage == .running || stage == .maintenance
            }
            await cluster.directory.commit()
            let off = running.filter { !back.contains($0) }
            return "host \(provider) rebooted: \(running.count) VMs were running; started again (autostart): \(back.sorted().joined(separator: ", "))"
                + (off.isEmpty ? "" : "; left off (no autostart): \(off.sorted().joined(separator: ", "))")
        } catch {
            return "host \(provider) could not be rebooted: \(error)"
        }
    }

    /// Waits (at most a minute) until every node is as `done` says: the VMs follow the hypervisor's
    /// file a moment later.
    private func settle(_ nodes: [SimulatedTalosNode], _ done: @Sendable (SimulatedTalosNode) async -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            var all = true
            for node in nodes where !(await done(node)) { all = false }
            if all { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
