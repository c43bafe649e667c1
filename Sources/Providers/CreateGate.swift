import Synchronization

/// At most `limit` storage-heavy calls at once on one hypervisor (`maxParallel`): VM creates with
/// their import, clone or disk resize. Held only around those calls, never across a power-on or a
/// wait, so five VMs on a host that imports for thirty seconds take about thirty seconds, not a
/// hundred and fifty, and the host's storage is never asked for more at once than it was given.
public final class CreateGate: Sendable {
    public let limit: Int
    private let state: Mutex<(available: Int, waiting: [CheckedContinuation<Void, Never>])>

    public init(limit: Int) {
        self.limit = max(1, limit)
        state = Mutex((max(1, limit), []))
    }

    /// Runs `body` holding one slot.
    public func withSlot<T>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    func acquire() async {
        let granted = state.withLock { state -> Bool in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        if granted { return }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                // A slot may have come free between the two locks.
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
