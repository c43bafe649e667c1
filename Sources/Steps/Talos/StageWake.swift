import Foundation
import ProvisionCore
import Synchronization
import TalosKit

/// What a wait on a Talos node does between two looks: it reads the node's MachineService/Events
/// stream until the machine stage differs from the last one seen, so the next look comes the
/// moment the node moves (installing -> rebooting -> booting -> running) rather than at the next
/// poll. While the node cannot be reached (it is rebooting) or already runs, the pause is an
/// ordinary short one (`pollInterval`): nothing to stream from, or no stage left to wait for.
final class StageWake: Sendable {
    let access: TalosAccess
    let node: String
    private let seen = Mutex<MachineStatus.Stage?>(nil)

    init(access: TalosAccess, node: String) {
        self.access = access
        self.node = node
    }

    /// The stage a look saw (nil: it could not tell).
    func saw(_ stage: MachineStatus.Stage?) { seen.withLock { $0 = stage } }

    @Sendable func wait(_ pause: Duration) async {
        let started = ContinuousClock.now
        if let known = seen.withLock({ $0 }), known != .running {
            do {
                let client = try await access.client(node, .admin, timeout: pause)
                if let stage = try await client.stageChange(from: known, within: pause) {
                    saw(stage)
                    return
                }
                if ContinuousClock.now - started >= pause { return }
            } catch {
                // Down or restarting: look again soon.
            }
        }
        let left = pause - (ContinuousClock.now - started)
        if left > .zero { try? await Task.sleep(for: min(left, access.pollInterval)) }
    }
}
