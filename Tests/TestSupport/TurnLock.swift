/// One holder at a time, the others waiting in turn: what DemoLabLock (the demo's fixed addresses)
/// and QuietMachine (an emulated CPU against a millisecond timing) are made of.
public actor TurnLock {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    /// Runs `body` holding the lock, after `ready` (run once it is held).
    public func holding<T: Sendable>(ready: @Sendable () async -> Void = {}, _ body: @Sendable () async throws -> T) async rethrows -> T {
        await acquire()
        await ready()
        do {
            let value = try await body()
            release()
            return value
        } catch {
            release()
            throw error
        }
    }
}
