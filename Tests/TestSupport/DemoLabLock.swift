/// The demo inventory's fixed loopback addresses (127.0.0.11:50000, 127.0.0.10:6443, the WoL and EC2
/// ports) can host one lab at a time: tests that run the demo through the CLI take this in turn.
public actor DemoLabLock {
    public static let shared = DemoLabLock()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    /// Runs `body` holding the demo addresses.
    public static func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        await shared.acquire()
        do {
            let value = try await body()
            await shared.release()
            return value
        } catch {
            await shared.release()
            throw error
        }
    }
}
