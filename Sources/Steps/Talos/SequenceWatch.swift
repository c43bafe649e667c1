import Foundation
import Synchronization
import TalosKit

/// Follows, in the background, the Events stream of a sequence a request started (a reset), so a
/// wait can see at its next look that the sequence failed on the node: Talos answered the request
/// before the sequence ran and reports its end only there.
final class SequenceWatch: Sendable {
    private let result = Mutex<TalosClient.SequenceOutcome?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// What the stream said so far (nil: nothing yet).
    var outcome: TalosClient.SequenceOutcome? { result.withLock { $0 } }

    func follow(_ client: TalosClient, actor: String, within timeout: Duration) {
        let started = Task { [weak self] in
            let outcome = (try? await client.sequenceOutcome(actor: actor, within: timeout)) ?? .unknown
            self?.result.withLock { $0 = outcome }
        }
        task.withLock { $0 = started }
    }

    /// What the stream says, waiting at most `timeout` for it to say something.
    func outcome(within timeout: Duration) async -> TalosClient.SequenceOutcome? {
        guard outcome == nil, let following = task.withLock({ $0 }) else { return outcome }
        // Whichever ends first: the stream's answer or the timeout (the follower itself goes on).
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await following.value }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return outcome
    }

    deinit { task.withLock { $0?.cancel() } }
}
