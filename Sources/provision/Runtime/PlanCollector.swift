import Foundation
import ProvisionCore
import Synchronization

/// Gathers what a live plan (a dry run) found: each step's verdict and the changes steps reported,
/// already redacted by the event bus. `provision plan` prints it once the dry run is over.
final class PlanCollector: EventSink {
    struct Verdict: Sendable {
        var pending: Bool
        var message: String
    }

    private let state = Mutex<(verdicts: [String: Verdict], changes: [String: [PlannedChange]], failures: [String: String])>(([:], [:], [:]))

    func receive(_ event: Event) {
        guard let step = event.step else { return }
        state.withLock { state in
            switch event.kind {
            case .stepPending: state.verdicts[step] = Verdict(pending: true, message: event.message ?? "")
            case .stepSatisfied: state.verdicts[step] = Verdict(pending: false, message: event.message ?? "")
            case .stepFailed: state.failures[step] = event.message ?? "failed"
            case .change: if let change = event.change { state.changes[step, default: []].append(change) }
            default: break
            }
        }
    }

    struct Result {
        /// What would change, in graph order: reported changes, or the step's own reason.
        var changes: [PlannedChange] = []
        /// Steps that can only be judged once the changes above are made.
        var waiting: [String] = []
        /// Nodes outside the inventory (never touched by `up`).
        var orphans: [PlannedChange] = []
        /// What differs but is another command's to change (a Talos upgrade).
        var advisories: [PlannedChange] = []
        var failures: [(step: String, message: String)] = []
    }

    func result(graph: StepGraph) -> Result {
        let (verdicts, changes, failures) = state.withLock { ($0.verdicts, $0.changes, $0.failures) }
        var result = Result()
        for instance in graph.instances {
            let reported = changes[instance.id] ?? []
            result.orphans += reported.filter { $0.action == "orphan" }
            result.advisories += reported.filter { Self.advisory($0) }
            if let failure = failures[instance.id] { result.failures.append((instance.id, failure)) }
            guard let verdict = verdicts[instance.id], verdict.pending else { continue }
            let own = reported.filter { $0.action != "orphan" && !Self.advisory($0) }
            if !own.isEmpty {
                result.changes += own
            } else if verdict.message.hasPrefix("waits for") {
                result.waiting.append(instance.id)
            } else {
                result.changes.append(PlannedChange(node: instance.node, resource: Self.resource(of: instance.kind), action: "apply",
                                                    reason: verdict.message))
            }
        }
        return result
    }

    /// Changes another command (or the operator) makes, not `up`: an upgrade, a VM resize.
    static func advisory(_ change: PlannedChange) -> Bool { change.action == "upgrade" || change.action == "resize" }

    /// The resource a step kind converges, for changes it did not describe itself.
    static func resource(of kind: String) -> String {
        switch kind {
        case let k where k.hasPrefix("machine."): return "machine"
        case "kube.cilium": return "cilium"
        case "kube.foundation": return "foundation"
        case "talos.secrets": return "secrets"
        case "talos.bootstrap", "talos.await-etcd", "talos.etcd-reseed", "talos.etcd-recover": return "etcd"
        case let k where k.hasPrefix("kube."): return "kubernetes"
        case let k where k.hasPrefix("gpu."): return "gpu"
        default: return "talos"
        }
    }
}
