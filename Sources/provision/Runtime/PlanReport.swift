import Foundation
import ProvisionCore

/// A live plan as people and scripts read it: changes per node (with the config diff and whether
/// it costs a reboot), what waits on them, orphans, and what could not be observed.
struct PlanReport {
    let inventory: String
    let playbook: String
    let result: PlanCollector.Result

    func print(_ output: Output) {
        if output.json {
            output.document([
                "inventory": inventory, "playbook": playbook, "changesPending": !result.changes.isEmpty || !result.waiting.isEmpty || !result.advisories.isEmpty,
                "changes": result.changes.map(Self.encode), "waiting": result.waiting, "orphans": result.orphans.map(Self.encode), "advisories": result.advisories.map(Self.encode),
                "failures": result.failures.map { ["step": $0.step, "message": $0.message] },
            ])
            return
        }
        let reboots = result.changes.filter { $0.reboot == true }.count
        var head = "Plan: \(inventory) · playbook \(playbook) · read live · "
        head += result.changes.isEmpty ? "nothing would change" : "\(result.changes.count) change\(result.changes.count == 1 ? "" : "s")"
        if reboots > 0 { head += " (\(reboots) with a reboot)" }
        if !result.advisories.isEmpty { head += " · \(result.advisories.count) not up's to make (an upgrade, a resize)" }
        output.result(head)
        let width = max("(cluster)".count, result.changes.compactMap(\.node).map(\.count).max() ?? 0) + 1
        for change in result.changes + result.orphans + result.advisories {
            let who = (change.node ?? "(cluster)").padding(toLength: width, withPad: " ", startingAt: 0)
            let cost = change.reboot == true ? "  [reboot]" : change.reboot == false ? "  [live]" : ""
            output.result("  \(who) \(change.resource.padding(toLength: 13, withPad: " ", startingAt: 0)) \(change.action.padding(toLength: 8, withPad: " ", startingAt: 0)) \(change.reason)\(cost)")
            if let diff = change.diff {
                for line in diff.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty { output.result("      \(line)") }
            }
        }
        if !result.waiting.isEmpty {
            output.result("  then \(result.waiting.count) step\(result.waiting.count == 1 ? "" : "s") that can only be judged after these: \(result.waiting.prefix(6).joined(separator: ", "))\(result.waiting.count > 6 ? ", ..." : "")")
        }
        for failure in result.failures { output.result("  could not observe \(failure.step): \(failure.message)") }
        if !result.changes.isEmpty { output.result("`provision up \(inventory)` applies them; control planes reboot one at a time, etcd-gated.") }
    }

    static func encode(_ change: PlannedChange) -> [String: Any] {
        ["node": change.node ?? NSNull(), "resource": change.resource, "action": change.action, "reason": change.reason,
         "reboot": change.reboot ?? NSNull(), "diff": change.diff ?? NSNull()]
    }
}
