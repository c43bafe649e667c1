import Foundation
import ProvisionCore
import TalosKit

/// The etcd health gate in front of, and behind, every control-plane disruption: every member
/// started and healthy, no alarm raised, and then the rule of what is about to happen to `node`.
/// Talos 1.13's upgrade, reboot and reset APIs check none of it.
struct EtcdGate {
    /// What is about to happen to the member.
    enum Purpose: Sendable {
        /// Down for a while and back (a reboot, an upgrade): never from 2 members (with one down,
        /// 2 have no quorum; Talos' own legacy upgrade refuses them).
        case disrupt
        /// Out of etcd and back as a new member (a safe reset): the others keep quorum meanwhile.
        case leave
        /// Out for good (`provision remove`): the others keep quorum and are not left at 2.
        case remove
    }

    let context: StepContext
    var purpose: Purpose = .disrupt

    /// What forbids it now; empty when the gate is open.
    func problems(before node: String?) async -> [String] {
        let access = TalosAccess.from(context)
        let controlPlanes = context.inventory.controlPlanes.map(\.name.value)
        // Members as a reachable control plane (another than the one going down, when there is one) sees them.
        var members: [Machine_EtcdMember]?
        var reasons: [String] = []
        for cp in controlPlanes.filter({ $0 != node }) + controlPlanes.filter({ $0 == node }) {
            do {
                members = try await access.client(cp, .admin, timeout: .seconds(5)).etcdMembers()
                break
            } catch {
                reasons.append("\(cp): \(error)")
            }
        }
        guard let members else { return ["no control plane answers for etcd's members (" + reasons.joined(separator: "; ") + ")"] }
        var problems: [String] = []
        let voters = members.filter { !$0.isLearner }
        let hostname = node.flatMap { context.inventory.node(named: $0)?.hostname } ?? node
        let others = voters.filter { $0.hostname != hostname }
        let isMember = others.count < voters.count
        switch purpose {
        case .disrupt:
            if voters.count == 2, isMember || node == nil {
                problems.append("etcd has 2 members: with one down it has no quorum, and 2 members survive no failure; add a third control plane first")
            }
        case .leave:
            if isMember, others.isEmpty || others.count < voters.count / 2 + 1 {
                problems.append("etcd has \(voters.count) member\(voters.count == 1 ? "" : "s"); without \(node ?? "it") it would lose quorum")
            }
        case .remove:
            if isMember, others.isEmpty {
                problems.append("\(node ?? "it") is etcd's last member; removing it ends the cluster")
            } else if isMember, others.count == 2 {
                problems.append("removing \(node ?? "it") would leave etcd with 2 members, which survive no failure; add a control plane first (`provision up` with a new one in the inventory), then remove this one")
            } else if isMember, others.count < voters.count / 2 + 1 {
                problems.append("without \(node ?? "it") etcd would lose quorum")
            }
        }
        if let learner = members.first(where: \.isLearner) { problems.append("etcd member \(learner.hostname) is still a learner (joining)") }
        // Every member must be started and healthy, except one that is leaving (it may be why: broken or dead).
        for member in voters where purpose == .disrupt || member.hostname != hostname {
            let name = member.hostname.isEmpty ? String(member.id, radix: 16) : member.hostname
            guard let cp = context.inventory.controlPlanes.first(where: { $0.hostname == member.hostname })?.name.value else {
                if purpose != .remove { problems.append("etcd member \(name) is not a control plane of the inventory (an orphan: `provision remove` it)") }
                continue
            }
            do {
                let client = try await access.client(cp, .admin, timeout: .seconds(5))
                let etcd = try await client.services().first { $0.id == "etcd" }
                guard etcd?.state == "Running", etcd?.health.healthy == true else {
                    problems.append("etcd on \(cp) is \(etcd?.state ?? "not running")\(etcd?.health.healthy == false ? ", unhealthy" : "")")
                    continue
                }
                let status = try await client.etcdStatus()
                if !status.errors.isEmpty { problems.append("etcd on \(cp) reports \(status.errors.joined(separator: "; "))") }
            } catch {
                problems.append("etcd on \(cp) does not answer: \(error)")
            }
        }
        if let any = controlPlanes.first(where: { $0 != node }) ?? controlPlanes.first,
           let alarms = try? await access.client(any, .admin, timeout: .seconds(5)).etcdAlarms(), !alarms.isEmpty {
            let names = alarms.map { alarm in members.first { $0.id == alarm.memberID }?.hostname ?? String(alarm.memberID, radix: 16) }
            problems.append("etcd alarm \(alarms.map { "\($0.alarm)" }.joined(separator: ", ")) raised on \(names.joined(separator: ", ")) (clear it, then `talosctl etcd alarm disarm`)")
        }
        return problems
    }

    /// Waits (up to `timeout`) for the gate to open. Before a disruption a gate that stays shut is a
    /// refusal (nothing was done); after one (`node` came back) it is a failure to report.
    func waitOpen(before node: String?, timeout: Duration, step: StepInstance, what: String, after: Bool = false) async throws {
        let interval = TalosAccess.from(context).pollInterval
        let deadline = ContinuousClock.now + timeout
        var last: [String] = []
        while true {
            last = await problems(before: node)
            if last.isEmpty { return }
            if ContinuousClock.now >= deadline { break }
            context.log("waiting for etcd before \(what): \(last.joined(separator: "; "))", level: .debug, step: step)
            try await Task.sleep(for: interval)
        }
        if after { throw StepError.permanent("etcd did not become healthy again after \(what): \(last.joined(separator: "; "))") }
        throw StepError.refused("etcd is not healthy enough to \(what): \(last.joined(separator: "; ")); nothing was changed on \(node ?? "the cluster") (--force overrides)")
    }
}
