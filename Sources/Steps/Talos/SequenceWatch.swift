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
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let outcome { return outcome }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return outcome
    }

    deinit { task.withLock { $0?.cancel() } }
}
